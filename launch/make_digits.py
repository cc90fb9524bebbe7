#!/usr/bin/env python3
"""make_digits.py OUT_DIR [--train N] [--validation N] [--seed S]

Writes a handwriting-like digits dataset as class folders of 32x32 RGB JPEGs
(OUT_DIR/{train,validation}/{0..9}/*.jpg), for launch/digits.sh: there is no
MNIST on the build machines and nothing may be downloaded, so the digits are
rendered from the DejaVu fonts Debian installs (fonts-dejavu-core) with the
distortions that make MNIST hard for a linear model and easy for a small CNN:
random font and weight, size, rotation, shear, position, stroke width, blur
and noise, white on black like MNIST. N is per class (default 600 train, 100
validation). Python 3 with PIL (python3-pil); a benchmark helper, not part of
mpifit."""
import argparse
import glob
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIDE = 32


def fonts():
    found = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf"))
    if not found:
        raise SystemExit("make_digits.py: no DejaVu fonts in /usr/share/fonts/truetype/dejavu "
                         "(apt-get install fonts-dejavu-core)")
    return found


def render(digit, font_path, rng):
    canvas = 56
    img = Image.new("L", (canvas, canvas), 0)
    size = rng.randint(20, 30)
    font = ImageFont.truetype(font_path, size)
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), str(digit), font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    x = (canvas - w) // 2 - box[0] + rng.randint(-3, 3)
    y = (canvas - h) // 2 - box[1] + rng.randint(-3, 3)
    d.text((x, y), str(digit), fill=255, font=font)
    # stroke width: thicken or thin a little
    k = rng.choice([None, None, "max", "min"])
    if k == "max":
        img = img.filter(ImageFilter.MaxFilter(3))
    elif k == "min" and "Bold" in font_path:
        img = img.filter(ImageFilter.MinFilter(3))
    # rotation and shear about the centre
    img = img.rotate(rng.uniform(-18, 18), resample=Image.BILINEAR)
    sh = rng.uniform(-0.3, 0.3)
    img = img.transform(img.size, Image.AFFINE, (1, sh, -sh * canvas / 2, 0, 1, 0), resample=Image.BILINEAR)
    # to 32x32 around the centre, with a random scale
    crop = rng.randint(36, 46)
    o = (canvas - crop) // 2
    img = img.crop((o, o, o + crop, o + crop)).resize((SIDE, SIDE), Image.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.9)))
    px = img.load()
    amp = rng.uniform(0, 40)
    for j in range(SIDE):
        for i in range(SIDE):
            v = px[i, j] + rng.gauss(0, amp)
            px[i, j] = int(min(255, max(0, v)))
    return img.convert("RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--validation", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fs = fonts()
    for split, n in (("train", a.train), ("validation", a.validation)):
        for digit in range(10):
            d = os.path.join(a.out, split, str(digit))
            os.makedirs(d, exist_ok=True)
            for k in range(n):
                render(digit, rng.choice(fs), rng).save(os.path.join(d, "%05d.jpg" % k), quality=92)
    print("make_digits.py: %s: %d train and %d validation images per class, 10 classes, %d fonts"
          % (a.out, a.train, a.validation, len(fs)))


if __name__ == "__main__":
    main()
