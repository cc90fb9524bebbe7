#!/usr/bin/env python3
"""digits_torch.py DATA_DIR [--epochs E] [--batch B] [--lr LR] [--seed S] [--threads T]

The reference side of launch/digits.sh: the digits CNN of
tests/data/keras/digits_cnn_k2.json (Keras' "simple MNIST convnet" on 32x32x3,
10 classes) in PyTorch 1.13, trained as mpifit trains it: the same class
folders (pixels x / 127.5 - 1, no augmentation), Keras' initializers
(glorot_uniform kernels, zero biases), Adam (Keras' epsilon 1e-7) at a
constant learning rate, dropout 0.5, the same global batch. Prints the
validation accuracy after every epoch and a last line
  RESULT impl=torch val_accuracy=... train_accuracy=... epochs=...
PyTorch is a benchmark reference only, never used by mpifit."""
import argparse
import glob
import os

import numpy as np
import torch
import torch.nn as nn
from PIL import Image


def load(split_dir):
    classes = sorted(os.listdir(split_dir))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(glob.glob(os.path.join(split_dir, c, "*.jpg"))):
            xs.append(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
            ys.append(ci)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ys, dtype=torch.long)


def net(classes):
    m = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 6 * 64, classes))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def accuracy(m, x, y):
    m.eval()
    with torch.no_grad():
        correct = sum((m(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(x), 500))
    m.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    xt, yt = load(os.path.join(a.data, "train"))
    xv, yv = load(os.path.join(a.data, "validation"))
    m = net(int(yt.max()) + 1)
    opt = torch.optim.Adam(m.parameters(), lr=a.lr, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt) - a.batch + 1, a.batch):  # full batches, as mpifit's drop_remainder
            idx = perm[i:i + a.batch]
            opt.zero_grad()
            loss = loss_fn(m(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        print("epoch %d: loss %.4f val_accuracy %.4f" % (epoch + 1, loss.item(), accuracy(m, xv, yv)), flush=True)
    print("RESULT impl=torch val_accuracy=%.4f train_accuracy=%.4f epochs=%d"
          % (accuracy(m, xv, yv), accuracy(m, xt, yt), a.epochs))


if __name__ == "__main__":
    main()
