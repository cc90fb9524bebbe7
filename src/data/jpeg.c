/* jpeg.c: JPEG decode/encode through libjpeg-turbo's TurboJPEG 2.x API
 * (tjInitDecompress, tjDecompressHeader3, tjDecompress2, tjCompress2).
 *
 * Decoding reads the header first, refuses sizes over MF_JPEG_MAX_PIXELS /
 * MF_JPEG_MAX_SIDE before any pixel buffer exists, picks the DCT scale, then
 * decodes into one buffer the decoder keeps and grows (decoders are per thread,
 * so steady state allocates nothing). Warnings are errors (TJFLAG_STOPONWARNING):
 * a truncated file must fail, not come back as a half-gray image that would be
 * trained on silently.
 *
 * CMYK/YCCK: TurboJPEG 2.1 cannot produce RGB from a 4-component JPEG
 * (tjDecompress2(..., TJPF_RGB) fails with "Unsupported color conversion
 * request"), so such files are decoded to TJPF_CMYK and converted here with the
 * naive formula (no colour management, as PIL and browsers do without an ICC
 * profile). Files carrying an Adobe APP14 marker (Photoshop, and libjpeg /
 * TurboJPEG's own encoder, which always writes one for CMYK) store inverted
 * CMYK, 255 = no ink: R = C*K/255, the same as libjpeg-turbo's cmyk.h. Without
 * the marker the values are ink amounts: R = (255-C)*(255-K)/255. */
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>
#include "../core/core.h"
#include "jpeg.h"

struct mf_jpeg_decoder {
    tjhandle tj; /* decompressor, replaced after each failure (fail_reset);
                    * NULL if that replacement ran out of memory */
    uint8_t *buf; /* (h, w, 3) RGB output; (h, w, 4) CMYK before conversion */
    size_t cap; /* bytes in buf */
};

mf_jpeg_decoder *mf_jpeg_decoder_create(void)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        mf_fail(MF_STATUS_NOMEM, "cannot create a TurboJPEG decompressor: %s", tjGetErrorStr2(NULL));
        return NULL;
    }
    mf_jpeg_decoder *d = mf_alloc(sizeof *d);
    d->tj = tj;
    return d;
}

void mf_jpeg_decoder_free(mf_jpeg_decoder *d)
{
    if (!d)
        return;
    if (d->tj)
        tjDestroy(d->tj);
    mf_free(d->buf);
    mf_free(d);
}

/* The cheap checks that get their own message: TurboJPEG would say something
 * vaguer ("Not a JPEG file: starts with 0x89 0x50") for a PNG named .jpg. */
static mf_status check_signature(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return mf_fail(MF_STATUS_DATA, "empty file (0 bytes)");
    if (len >= 2 && buf[0] == 0xFF && buf[1] == 0xD8)
        return MF_STATUS_OK;
    char hex[16] = ""; /* "xx xx xx xx" */
    size_t n = len < 4 ? len : 4, at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(hex + at, sizeof hex - at, i ? " %02x" : "%02x", (unsigned)buf[i]);
    return mf_fail(MF_STATUS_DATA, "not a JPEG (starts with %s; a JPEG starts with ff d8)", hex);
}

/* Use as `return fail_reset(d, mf_fail(...))`: the message (which may quote
 * tjGetErrorStr2(d->tj)) is formatted before the handle goes. TurboJPEG 2.1's
 * tjDecompressHeader3 returns from a libjpeg error without aborting the
 * decompressor, which stays mid-header and fails every later call with the
 * same message (seen with 2.1.5: one corrupt file poisoned the thread's decoder
 * for good). Failures are rare and a new handle is cheap, so every failed
 * TurboJPEG call gets a fresh one instead of trusting the old one's state. */
static mf_status fail_reset(mf_jpeg_decoder *d, mf_status s)
{
    if (d->tj)
        tjDestroy(d->tj);
    d->tj = tjInitDecompress(); /* NULL: reported by the next call */
    return s;
}

/* Header fields; every failure is MF_STATUS_DATA with libjpeg's reason. */
static mf_status read_header(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, int *w, int *h, int *cs)
{
    MF_TRY(check_signature(buf, len));
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return mf_fail(MF_STATUS_NOMEM, "cannot create a TurboJPEG decompressor: %s", tjGetErrorStr2(NULL));
    int subsamp = 0;
    if (tjDecompressHeader3(d->tj, buf, (unsigned long)len, w, h, &subsamp, cs) != 0)
        return fail_reset(
            d, mf_fail(MF_STATUS_DATA, "truncated or corrupt JPEG: header unreadable: %s", tjGetErrorStr2(d->tj)));
    /* libjpeg fakes an EOI at the end of the data, so a file cut inside the
     * header "succeeds" with no frame: 0x0 */
    if (*w <= 0 || *h <= 0)
        return fail_reset(d,
                          mf_fail(MF_STATUS_DATA, "truncated or corrupt JPEG: no frame header (size %dx%d)", *w, *h));
    return MF_STATUS_OK;
}

mf_status mf_jpeg_header(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, int *w, int *h)
{
    MF_ASSERT(d && w && h && (buf || len == 0));
    int cs = 0;
    *w = *h = 0;
    mf_status s = read_header(d, buf, len, w, h, &cs);
    if (s != MF_STATUS_OK)
        *w = *h = 0;
    return s;
}

/* 1 if an APP14 "Adobe" segment precedes the scan data, i.e. CMYK is stored
 * inverted. Walks the marker segments with bounds checks; anything malformed
 * just ends the walk (libjpeg has already accepted the header by now). */
static int has_adobe_marker(const uint8_t *buf, size_t len)
{
    size_t p = 2; /* after SOI */
    while (p + 4 <= len) {
        if (buf[p] != 0xFF)
            return 0;
        uint8_t m = buf[p + 1];
        if (m == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (m == 0xDA || m == 0xD9) /* SOS, EOI: no more tables */
            return 0;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* TEM, RSTn: no length */
            p += 2;
            continue;
        }
        size_t seg = ((size_t)buf[p + 2] << 8) | buf[p + 3]; /* includes its 2 length bytes */
        if (seg < 2)
            return 0;
        /* libjpeg's own test (jdmarker.c): 12 data bytes starting "Adobe" */
        if (m == 0xEE && seg >= 2 + 12 && p + 4 + 5 <= len && memcmp(buf + p + 4, "Adobe", 5) == 0)
            return 1;
        p += 2 + seg;
    }
    return 0;
}

/* In place: px: (n, 4) CMYK -> (n, 3) RGB. Safe forwards because pixel i is
 * read from [4i, 4i+4) before [3i, 3i+3) is written, and 3i+3 <= 4i+4. */
static void cmyk_to_rgb_inplace(uint8_t *px, size_t n, int inverted)
{
    for (size_t i = 0; i < n; i++) {
        unsigned c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2], k = px[4 * i + 3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        px[3 * i] = (uint8_t)((c * k + 127) / 255);
        px[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
        px[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* The smallest of TurboJPEG's factors <= 1 whose output still covers
 * min_w x min_h; 1/1 when none does (the image is already smaller, and the
 * resize step upsamples better than the IDCT would) and for (0, 0), which the
 * contract defines as full size. */
static tjscalingfactor pick_scale(int w, int h, int min_w, int min_h)
{
    tjscalingfactor best = {1, 1};
    if (min_w <= 0 && min_h <= 0)
        return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num > sf[i].denom)
            continue;
        if (TJSCALED(w, sf[i]) < min_w || TJSCALED(h, sf[i]) < min_h)
            continue;
        if ((long)sf[i].num * best.denom < (long)best.num * sf[i].denom)
            best = sf[i];
    }
    return best;
}

mf_status mf_jpeg_decode(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, int min_w, int min_h, mf_image_rgb8 *out)
{
    MF_ASSERT(d && out && (buf || len == 0));
    memset(out, 0, sizeof *out);
    int w = 0, h = 0, cs = 0;
    MF_TRY(read_header(d, buf, len, &w, &h, &cs));
    /* before any allocation: a forged header must not cost 10 GiB */
    if (w > MF_JPEG_MAX_SIDE || h > MF_JPEG_MAX_SIDE || (uint64_t)w * (uint64_t)h > MF_JPEG_MAX_PIXELS)
        return mf_fail(MF_STATUS_DATA,
                       "image is %dx%d, larger than the limit of %d px per side and %u "
                       "pixels (MF_JPEG_MAX_SIDE, MF_JPEG_MAX_PIXELS)",
                       w, h, MF_JPEG_MAX_SIDE, MF_JPEG_MAX_PIXELS);

    tjscalingfactor sf = pick_scale(w, h, min_w, min_h);
    int ow = TJSCALED(w, sf), oh = TJSCALED(h, sf);
    int four = cs == TJCS_CMYK || cs == TJCS_YCCK;
    size_t need = (size_t)ow * (size_t)oh * (four ? 4u : 3u);
    if (need > d->cap) {
        /* grow by at least half again, so a stream of slowly larger photos
         * does not reallocate on every file */
        size_t cap = d->cap + d->cap / 2;
        if (cap < need)
            cap = need;
        mf_free(d->buf);
        d->buf = mf_alloc(cap);
        d->cap = cap;
    }
    if (tjDecompress2(d->tj, buf, (unsigned long)len, d->buf, ow, 0, oh, four ? TJPF_CMYK : TJPF_RGB,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
        int warn = tjGetErrorCode(d->tj) == TJERR_WARNING;
        return fail_reset(d,
                          mf_fail(MF_STATUS_DATA, "truncated or corrupt JPEG: %s%s", tjGetErrorStr2(d->tj),
                                  warn ? " (a libjpeg warning, treated as an error)" : ""));
    }
    if (four)
        cmyk_to_rgb_inplace(d->buf, (size_t)ow * (size_t)oh, has_adobe_marker(buf, len));

    out->rgb = d->buf;
    out->w = ow;
    out->h = oh;
    out->src_w = w;
    out->src_h = h;
    return MF_STATUS_OK;
}

mf_status mf_jpeg_encode(const uint8_t *rgb, int w, int h, int quality, uint8_t **out, size_t *out_len)
{
    MF_ASSERT(rgb && out && out_len);
    *out = NULL;
    *out_len = 0;
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535)
        return mf_fail(MF_STATUS_INVALID, "JPEG encode: size %dx%d must be 1..65535 per side", w, h);
    if (quality < 1 || quality > 100)
        return mf_fail(MF_STATUS_INVALID, "JPEG encode: quality must be 1..100, got %d", quality);
    tjhandle tj = tjInitCompress();
    if (!tj)
        return mf_fail(MF_STATUS_NOMEM, "cannot create a TurboJPEG compressor: %s", tjGetErrorStr2(NULL));
    unsigned char *jb = NULL; /* TurboJPEG allocates it: tjAlloc'ed, so tjFree'd */
    unsigned long jlen = 0;
    mf_status s = MF_STATUS_OK;
    /* no TJFLAG_PROGRESSIVE: baseline */
    if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jb, &jlen, TJSAMP_420, quality, 0) != 0) {
        s = mf_fail(MF_STATUS_DATA, "JPEG encode of %dx%d failed: %s", w, h, tjGetErrorStr2(tj));
    } else {
        *out = mf_alloc(jlen);
        memcpy(*out, jb, jlen);
        *out_len = jlen;
    }
    tjFree(jb);
    tjDestroy(tj);
    return s;
}

const char *mf_jpeg_api_version(void)
{
#ifdef TJFLAG_LIMITSCANS
    return "2.1+";
#else
    return "2.0";
#endif
}
