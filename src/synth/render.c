/* render.c: the synthetic "beans-like" dataset's pictures: procedural photos
 * of bean leaflets in the three classes of the beans dataset (Makerere AI Lab,
 * as in tensorflow_datasets' `beans`). writer.c makes the class-folder JPEG
 * tree that Keras' image_dataset_from_directory reads. A tool of the CLI and
 * the tests, not part of libmpifit.
 *
 * One picture is a function of its seed only. It is drawn in four passes over
 * a float canvas (RGB in 0..1, (size, size) row-major):
 *   1. the leaf: shape, albedo (colour), lighting and the vein network, with
 *      the per-pixel "areole" (the patch of lamina enclosed by veins) recorded;
 *   2. the class: angular lesions clipped to areoles (angular_leaf_spot),
 *      round pustules with halos (bean_rust), and small blemishes on every
 *      class so that a single brown pixel proves nothing;
 *   3. the background (soil, shadow, or out-of-focus foliage), the leaf's cast
 *      shadow, the composite and the photo's lighting and white balance;
 *   4. a little defocus, sensor noise and quantisation to RGB8.
 * Geometry is in pixels; every random size is a fraction of the frame or of
 * the leaf, so a seed draws the same scene at any size (only the pixel-level
 * grain and noise differ).
 *
 * Leaf coordinates: t runs along the midrib from the petiole insertion (0) to
 * the tip (1); v is the signed distance across it in pixels; r = v / w(t) is
 * v relative to the local half-width, so |r| = 1 on the margin. Lateral veins
 * are the curves q = t - A1 |r| - A2 r^2 = const: they leave the midrib at an
 * angle and arch towards the tip, like the pinnate venation of a Phaseolus
 * leaflet, and the band between two of them is found by comparing q. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "../core/core.h"
#include "synthetic.h"

const char *const mf_synth_class_names[MF_SYNTH_NUM_CLASSES] = {"angular_leaf_spot", "bean_rust", "healthy"};

enum { LABEL_ALS = 0, LABEL_RUST = 1, LABEL_HEALTHY = 2 };

#define PI_F 3.14159265f

/* ---- small numeric helpers */

/* fminf/fmaxf are library calls unless NaNs are ruled out; nothing here is NaN */
static float minf(float a, float b) { return a < b ? a : b; }
static float maxf(float a, float b) { return a > b ? a : b; }
static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static float mixf(float a, float b, float w) { return a + (b - a) * w; }
static float smoothstepf(float e0, float e1, float x)
{
    float s = clampf((x - e0) / (e1 - e0), 0.0f, 1.0f);
    return s * s * (3.0f - 2.0f * s);
}
static float unif(mf_rng *r, float lo, float hi) { return lo + (hi - lo) * mf_rng_uniform(r); }

typedef struct rgbf {
    float r, g, b;
} rgbf;

static rgbf rgb(float r, float g, float b)
{
    rgbf c = {r, g, b};
    return c;
}
static rgbf rgb_scale(rgbf c, float s) { return rgb(c.r * s, c.g * s, c.b * s); }
static rgbf rgb_mix(rgbf a, rgbf b, float w) { return rgb(mixf(a.r, b.r, w), mixf(a.g, b.g, w), mixf(a.b, b.b, w)); }

/* Mix pixel p of an (n, 3) float buffer towards c by w. */
static void paint(float *buf, size_t p, rgbf c, float w)
{
    float *d = buf + 3 * p;
    d[0] = mixf(d[0], c.r, w);
    d[1] = mixf(d[1], c.g, w);
    d[2] = mixf(d[2], c.b, w);
}

/* A stateless hash to [0, 1): per-pixel texture that does not depend on the
 * order pixels are visited in. */
static float hash01(uint32_t x, uint32_t y, uint32_t salt)
{
    uint32_t h = x * 0x8da6b343u ^ y * 0xd8163841u ^ salt * 0xcb1ab31fu;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

/* Two approximately standard-normal samples from one 64-bit draw: each is a sum
 * of four uniform bytes (Irwin-Hall), 20x cheaper than Box-Muller, and sensor
 * noise does not need the tails. */
static void normal_pair(mf_rng *r, float *a, float *b)
{
    uint64_t x = mf_rng_u64(r);
    int s0 = (int)(x & 255) + (int)(x >> 8 & 255) + (int)(x >> 16 & 255) + (int)(x >> 24 & 255);
    int s1 = (int)(x >> 32 & 255) + (int)(x >> 40 & 255) + (int)(x >> 48 & 255) + (int)(x >> 56 & 255);
    *a = (float)(s0 - 510) * (1.0f / 147.8f);
    *b = (float)(s1 - 510) * (1.0f / 147.8f);
}

/* ---- value noise: smooth random fields for blotches, lighting and texture */

#define NOISE_MAX_CELLS 64

/* A periodic lattice of g x g random values, interpolated with smoothstep
 * weights: blurry blobs about 1/g of the frame across. Each field is rotated
 * and shifted by a random amount so that no two share the lattice's axes (an
 * axis-aligned lattice shows up as blocky, rectangular blotches). */
typedef struct vnoise {
    int g;
    float c, s, ox, oy; /* rotation and offset of the frame in lattice units */
    float v[NOISE_MAX_CELLS * NOISE_MAX_CELLS];
} vnoise;

static void vnoise_init(vnoise *n, int g, mf_rng *r)
{
    MF_ASSERT(g >= 1 && g <= NOISE_MAX_CELLS);
    n->g = g;
    float a = unif(r, 0.0f, 2.0f * PI_F);
    n->c = cosf(a) * (float)g;
    n->s = sinf(a) * (float)g;
    /* |rotated coordinate| <= 1.5 g over the frame: an offset of 2 g keeps
     * lattice coordinates positive, so truncation is floor() */
    n->ox = unif(r, 2.0f * (float)g, 3.0f * (float)g);
    n->oy = unif(r, 2.0f * (float)g, 3.0f * (float)g);
    for (int i = 0; i < g * g; i++)
        n->v[i] = mf_rng_uniform(r);
}

/* x, y in frame units ([0, 1] across the image); returns [0, 1). */
static float vnoise_at(const vnoise *n, float x, float y)
{
    float fx = n->c * x - n->s * y + n->ox, fy = n->s * x + n->c * y + n->oy;
    int g = n->g, ix = (int)fx, iy = (int)fy;
    float sx = fx - (float)ix, sy = fy - (float)iy;
    int x0 = ix % g, y0 = iy % g;
    int x1 = x0 + 1 == g ? 0 : x0 + 1, y1 = y0 + 1 == g ? 0 : y0 + 1;
    sx = sx * sx * (3.0f - 2.0f * sx);
    sy = sy * sy * (3.0f - 2.0f * sy);
    const float *r0 = n->v + y0 * g, *r1 = n->v + y1 * g;
    return mixf(mixf(r0[x0], r0[x1], sx), mixf(r1[x0], r1[x1], sx), sy);
}

/* ---- the leaf: geometry drawn from the seed */

#define WTAB 256 /* samples of the half-width profile over t in [-lobe, 1] */
#define MAX_LAT 8 /* lateral veins per side */
#define MAX_RHO 10 /* cross veins per half band */

typedef struct leaf {
    float bx, by; /* petiole insertion (t = 0 on the midrib), pixels */
    float ax, ay; /* unit vector from base to tip */
    float len; /* base-to-tip length L, pixels */
    float half_w[2]; /* widest half-width per side (0: v < 0, 1: v >= 0), pixels:
                            * the two halves of a leaflet are rarely equal */
    float bend; /* midrib curvature: v is measured from v0 = bend * L * t^2 */
    float lobe; /* how far the basal lobes reach behind t = 0 (heart-shaped base) */
    float notch; /* half-width of the basal notch at t = -lobe, in units of half_w */
    float wtab[WTAB + 1]; /* half-width profile w(t) / half_w, max ~1 */
    float dtab[WTAB + 1]; /* d(profile)/dt */
    /* venation */
    float a1, a2; /* lateral vein curve q = t - a1|r| - a2 r^2 */
    int n_lat[2]; /* lateral veins per side */
    float lat_q[2][MAX_LAT]; /* their q, increasing */
    float split[2][MAX_LAT + 1]; /* where a minor veinlet splits each band, 0..1 */
    int n_rho; /* cross veins per half band */
    float rho[2][MAX_LAT + 1][2][MAX_RHO]; /* their |r|, increasing */
    float mid_hw, lat_hw, minor_hw; /* vein half-widths at the base, pixels */
    float petiole_len, petiole_hw; /* stalk behind the base, pixels */
    float bound_x, bound_y, bound_r; /* a circle holding leaf and petiole: pixels
                                          * outside it skip the distance field */
} leaf;

/* The normalised half-width of an ovate leaflet with an acuminate tip: an egg
 * (an ellipse with a longer upper half) times a taper that makes the last
 * stretch concave, so the tip is drawn out into a point. */
static float leaf_profile(float t, float c, float lobe, float h_hi, float tip0, float tipk)
{
    if (t <= -lobe || t >= 1.0f)
        return 0.0f;
    float h = t < c ? c + lobe : h_hi;
    float e = (t - c) / h;
    float w = sqrtf(maxf(0.0f, 1.0f - e * e));
    if (t > tip0) {
        float s = (t - tip0) / (1.0f - tip0);
        w *= powf(1.0f - s * s, tipk);
    }
    return w;
}

static void leaf_init(leaf *lf, int size, mf_rng *r)
{
    float S = (float)size;
    lf->len = S * unif(r, 0.55f, 0.85f);
    float ang = unif(r, 0.0f, 2.0f * PI_F);
    lf->ax = cosf(ang);
    lf->ay = sinf(ang);
    float hw = lf->len * unif(r, 0.30f, 0.40f);
    int wide = (int)mf_rng_below(r, 2);
    lf->half_w[wide] = hw;
    lf->half_w[!wide] = hw * unif(r, 0.85f, 1.0f);
    lf->bend = unif(r, -0.08f, 0.08f);
    /* Centre the widest part of the blade, then shift it while keeping most of
     * the leaf in the frame. */
    float slack = (1.0f - lf->len / S) * 0.4f * S;
    float cx = 0.5f * S + unif(r, -slack, slack), cy = 0.5f * S + unif(r, -slack, slack);
    lf->bx = cx - 0.42f * lf->len * lf->ax;
    lf->by = cy - 0.42f * lf->len * lf->ay;

    float c = unif(r, 0.30f, 0.42f);
    lf->lobe = unif(r, 0.0f, 0.09f);
    lf->notch = lf->lobe * unif(r, 2.0f, 3.5f);
    float h_hi = (1.0f - c) * unif(r, 1.05f, 1.3f);
    float tip0 = unif(r, 0.45f, 0.65f), tipk = unif(r, 1.4f, 2.3f);
    for (int i = 0; i <= WTAB; i++) {
        float t = -lf->lobe + (1.0f + lf->lobe) * (float)i / WTAB;
        float dt = 1e-3f;
        lf->wtab[i] = leaf_profile(t, c, lf->lobe, h_hi, tip0, tipk);
        lf->dtab[i] = (leaf_profile(t + dt, c, lf->lobe, h_hi, tip0, tipk) -
                       leaf_profile(t - dt, c, lf->lobe, h_hi, tip0, tipk)) /
            (2.0f * dt);
    }

    /* Venation: 5-7 arching lateral veins per side, independently jittered so
     * the two sides alternate as on a real leaflet; each band between two of
     * them is split by a veinlet and crossed by fine cross veins, which enclose
     * the areoles that angular leaf spot lesions fill. */
    lf->a1 = unif(r, 0.16f, 0.28f);
    lf->a2 = unif(r, 0.06f, 0.14f);
    float first = unif(r, 0.01f, 0.05f), last = unif(r, 0.60f, 0.72f);
    for (int s = 0; s < 2; s++) {
        int n = 5 + (int)mf_rng_below(r, 3);
        float step = (last - first) / (float)(n - 1);
        float off = s ? unif(r, 0.0f, 0.5f) * step : 0.0f;
        lf->n_lat[s] = n;
        for (int i = 0; i < n; i++)
            lf->lat_q[s][i] = first + off * (i < n - 1) + step * ((float)i + unif(r, -0.18f, 0.18f));
        for (int k = 0; k <= n; k++)
            lf->split[s][k] = unif(r, 0.35f, 0.65f);
    }
    lf->n_rho = 6 + (int)mf_rng_below(r, 3);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k <= MAX_LAT; k++)
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < lf->n_rho; j++)
                    lf->rho[s][k][h][j] = ((float)j + 0.55f + unif(r, -0.42f, 0.42f)) / ((float)lf->n_rho + 0.2f);
    lf->mid_hw = S * unif(r, 0.0045f, 0.0065f);
    lf->lat_hw = S * unif(r, 0.0022f, 0.0032f);
    lf->minor_hw = S * 0.0009f;
    lf->petiole_len = lf->len * unif(r, 0.15f, 0.35f);
    lf->petiole_hw = lf->mid_hw * unif(r, 1.1f, 1.5f);
    float t0 = -maxf(lf->lobe, lf->petiole_len / lf->len), tm = 0.5f * (t0 + 1.0f);
    float half_len = 0.5f * (1.0f - t0) * lf->len;
    float half_wid = maxf(lf->half_w[0], lf->half_w[1]) + fabsf(lf->bend) * lf->len + lf->petiole_hw;
    lf->bound_x = lf->bx + tm * lf->len * lf->ax;
    lf->bound_y = lf->by + tm * lf->len * lf->ay;
    lf->bound_r = sqrtf(half_len * half_len + half_wid * half_wid) + 2.0f;
}

/* 1 when (x, y) is farther than `margin` pixels outside the bounding circle. */
static int leaf_far(const leaf *lf, float x, float y, float margin)
{
    float dx = x - lf->bound_x, dy = y - lf->bound_y, r = lf->bound_r + margin;
    return dx * dx + dy * dy > r * r;
}

/* A point in leaf coordinates. */
typedef struct leafpt {
    float t, v; /* along the midrib (0 base, 1 tip); across it, pixels */
    float wpx; /* local half-width on v's side, pixels */
    float slope; /* d wpx / d(pixels along the midrib) */
    int side; /* 0: v < 0, 1: v >= 0 */
} leafpt;

/* The normalised half-width at t (0 off the blade), and its slope if wanted. */
static float leaf_width(const leaf *lf, float t, float *dprof)
{
    float f = (t + lf->lobe) / (1.0f + lf->lobe) * WTAB, prof = 0.0f, d = 0.0f;
    if (f > 0.0f && f < (float)WTAB) {
        int i = (int)f;
        float w = f - (float)i;
        prof = mixf(lf->wtab[i], lf->wtab[i + 1], w);
        d = mixf(lf->dtab[i], lf->dtab[i + 1], w);
    }
    if (dprof)
        *dprof = d;
    return prof;
}

static void leaf_point(const leaf *lf, float x, float y, leafpt *p)
{
    float dx = x - lf->bx, dy = y - lf->by;
    float u = dx * lf->ax + dy * lf->ay;
    float t = u / lf->len;
    float v = -dx * lf->ay + dy * lf->ax - lf->bend * lf->len * t * t;
    int side = v >= 0.0f;
    float dprof;
    float prof = leaf_width(lf, t, &dprof);
    p->t = t;
    p->v = v;
    p->side = side;
    p->wpx = lf->half_w[side] * prof;
    p->slope = lf->half_w[side] * dprof / lf->len;
}

/* Signed distance to the leaf outline in pixels (positive inside). Dividing
 * the width margin by sqrt(1 + slope^2) turns it into a distance normal to the
 * outline, which is what anti-aliasing needs. */
static float leaf_sdist(const leaf *lf, const leafpt *p)
{
    float d = (p->wpx - fabsf(p->v)) / sqrtf(1.0f + p->slope * p->slope);
    d = minf(d, (1.0f - p->t) * lf->len);
    d = minf(d, (p->t + lf->lobe) * lf->len);
    if (p->t < 0.0f && lf->lobe > 0.0f) {
        /* the notch between the basal lobes, where the petiole joins */
        float k = lf->notch * lf->half_w[p->side] / (lf->lobe * lf->len);
        float dn = (fabsf(p->v) + k * p->t * lf->len) / sqrtf(1.0f + k * k);
        d = minf(d, dn);
    }
    return d;
}

/* Signed distance to the petiole (the leaf stalk), pixels. */
static float petiole_sdist(const leaf *lf, const leafpt *p)
{
    float u = p->t * lf->len;
    if (u > 0.0f)
        return -1e9f;
    float hw = lf->petiole_hw * (1.0f - 0.25f * (-u) / lf->petiole_len);
    return minf(hw - fabsf(p->v), u + lf->petiole_len);
}

/* Where a leaf point sits in the vein network. */
typedef struct veinpt {
    int cell; /* areole id: (side, band, half, slot), unique per leaf */
    float lat; /* pixels to the nearest lateral vein's centre line */
    float minor; /* pixels to the nearest veinlet or cross vein centre line */
    float edge; /* pixels to the nearest vein edge enclosing the areole */
    float bump; /* 0 at the band's veins .. 1 midway: the lamina bulges between veins */
} veinpt;

static void vein_at(const leaf *lf, const leafpt *p, veinpt *o)
{
    const float big = 1e9f;
    float wpx = maxf(p->wpx, 0.5f);
    float ar = minf(fabsf(p->v) / wpx, 1.0f);
    float q = p->t - lf->a1 * ar - lf->a2 * ar * ar;
    /* |grad q| in 1/pixels, to turn q differences into pixel distances */
    float dq = lf->a1 + 2.0f * lf->a2 * ar;
    float gu = 1.0f / lf->len + dq * ar * p->slope / wpx, gv = dq / wpx;
    float gq = sqrtf(gu * gu + gv * gv);
    int s = p->side, n = lf->n_lat[s];
    const float *lq = lf->lat_q[s];
    int k = -1;
    while (k + 1 < n && lq[k + 1] <= q)
        k++;
    /* the bands before the first and after the last vein end at virtual bounds */
    float lo = k >= 0 ? lq[k] : -1.0f, hi = k + 1 < n ? lq[k + 1] : 2.0f;
    float d_lo = k >= 0 ? (q - lo) / gq : big, d_hi = k + 1 < n ? (hi - q) / gq : big;
    o->lat = minf(d_lo, d_hi);
    /* a veinlet halves each band; the open bands at the base and the tip get
     * one at a fixed distance from their single vein */
    float split = k >= 0 && k + 1 < n ? lo + lf->split[s][k + 1] * (hi - lo)
        : k < 0                       ? lq[0] - 0.06f
                                      : lq[n - 1] + 0.08f;
    int h = q >= split;
    float d_split = fabsf(q - split) / gq;
    const float *rho = lf->rho[s][k + 1][h];
    int j = 0;
    while (j < lf->n_rho && rho[j] <= ar)
        j++;
    float d_rho = big;
    if (j > 0)
        d_rho = (ar - rho[j - 1]) * wpx;
    if (j < lf->n_rho)
        d_rho = minf(d_rho, (rho[j] - ar) * wpx);
    o->minor = minf(d_split, d_rho);
    o->cell = ((s * (MAX_LAT + 1) + (k + 1)) * 2 + h) * (MAX_RHO + 1) + j;
    float taper = 1.0f - 0.6f * ar;
    o->edge = minf(minf(d_lo, d_hi) - lf->lat_hw * taper, o->minor - lf->minor_hw);
    o->edge = minf(o->edge, fabsf(p->v) - lf->mid_hw * (1.0f - 0.7f * p->t));
    float fb = k >= 0 && k + 1 < n ? (q - lo) / (hi - lo) : 0.5f;
    o->bump = sinf(PI_F * clampf(fb, 0.0f, 1.0f));
}

/* Coverage of an anti-aliased line of half-width hw at distance d (pixels):
 * lines thinner than a pixel fade instead of vanishing. */
static float line_cover(float d, float hw) { return clampf(hw + 0.5f - d, 0.0f, minf(1.0f, 2.0f * hw)); }

/* The pixel position of leaf coordinates (t, r): the inverse of leaf_point. */
static void leaf_to_xy(const leaf *lf, float t, float r, float *x, float *y)
{
    float u = t * lf->len;
    float v = lf->bend * lf->len * t * t + r * lf->half_w[r >= 0.0f] * leaf_width(lf, t, NULL);
    *x = lf->bx + u * lf->ax - v * lf->ay;
    *y = lf->by + u * lf->ay + v * lf->ax;
}

/* A random point of the blade, uniform over its area: t is drawn in
 * proportion to the local width (rejection), r uniformly across. */
static void leaf_random_point(const leaf *lf, mf_rng *r, float rmax, float *x, float *y)
{
    for (;;) {
        float t = unif(r, 0.03f, 0.93f);
        if (mf_rng_uniform(r) * 1.05f > leaf_width(lf, t, NULL))
            continue;
        float rr = unif(r, -rmax, rmax);
        leaf_to_xy(lf, t, rr, x, y);
        return;
    }
}

/* ---- the canvas */

typedef struct canvas {
    int size;
    size_t n; /* size * size */
    float *alb; /* (n, 3) leaf albedo: colour before lighting */
    float *shade; /* (n) leaf lighting multiplier */
    float *gloss; /* (n) specular sheen added on top, 0..1 */
    float *cover; /* (n) leaf (and petiole) coverage, 0..1 */
    float *edge; /* (n) pixels to the nearest vein edge of the pixel's areole */
    int32_t *cell; /* (n) areole id, -1 off the blade */
    float *img; /* (n, 3) the composed photo */
    leaf lf;
    rgbf leaf_col; /* the leaf's base colour, for class features to key off */
    float light_x, light_y; /* unit vector towards the light, image plane */
} canvas;

/* Pass 1: leaf shape, colour, venation, lighting. */
static void draw_leaf(canvas *cv, mf_rng *r)
{
    leaf *lf = &cv->lf;
    int S = cv->size;
    /* Bean leaf green, varied towards yellow-green (older, sunlit or
     * nitrogen-poor leaves) or blue-green (young, shaded ones) and in
     * brightness, so that colour alone says little about the class. */
    float bright = unif(r, 0.72f, 1.2f), yellow = unif(r, -0.05f, 0.13f), blue = unif(r, 0.0f, 0.05f);
    rgbf base = rgb((0.27f + yellow) * bright, (0.46f + 0.35f * yellow) * bright, (0.13f + blue) * bright);
    cv->leaf_col = base;
    /* veins are paler and yellower than the lamina (less chlorophyll) */
    rgbf vein = rgb_scale(rgb(0.66f, 0.76f, 0.42f), bright);
    float vein_mix = unif(r, 0.25f, 0.5f);
    rgbf petiole = rgb_mix(base, rgb(0.55f, 0.62f, 0.30f), 0.5f);
    /* Chlorotic mottling (nutrient stress, age) on any class. */
    float mottle = mf_rng_uniform(r) < 0.5f ? unif(r, 0.0f, 0.35f) : 0.0f;
    rgbf yellowed = rgb(0.62f * bright, 0.64f * bright, 0.20f * bright);
    /* Lighting: one half of the blade tilted towards the light, a cupped or
     * domed blade, a brightness gradient along it, bulges between the veins,
     * and a soft specular sheen from the waxy cuticle. */
    float side_l = unif(r, -0.18f, 0.18f), tilt = unif(r, -0.25f, 0.25f), cup = unif(r, -0.12f, 0.18f);
    float quilt = unif(r, 0.04f, 0.12f);
    float gloss_amt = mf_rng_uniform(r) < 0.6f ? unif(r, 0.03f, 0.16f) : 0.0f;
    float gl_t = unif(r, 0.2f, 0.8f), gl_r = unif(r, -0.6f, 0.6f), gl_s = unif(r, 0.15f, 0.35f);
    vnoise *nz = mf_alloc(3 * sizeof *nz);
    vnoise_init(&nz[0], 3 + (int)mf_rng_below(r, 3), r); /* brightness blotches */
    vnoise_init(&nz[1], 6 + (int)mf_rng_below(r, 5), r); /* hue variation */
    vnoise_init(&nz[2], 5 + (int)mf_rng_below(r, 4), r); /* mottling */
    float soft = maxf(0.7f, (float)S / 500.0f); /* edge softness: a real lens blurs ~1 px */
    float inv = 1.0f / (float)S;
    uint32_t salt = (uint32_t)mf_rng_u64(r);

    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            size_t p = (size_t)y * S + x;
            cv->cell[p] = -1;
            if (leaf_far(lf, (float)x + 0.5f, (float)y + 0.5f, 0.0f))
                continue;
            leafpt lp;
            leaf_point(lf, (float)x + 0.5f, (float)y + 0.5f, &lp);
            float d = leaf_sdist(lf, &lp);
            float dp = petiole_sdist(lf, &lp);
            float cl = clampf(d / soft + 0.5f, 0.0f, 1.0f), cp = clampf(dp / soft + 0.5f, 0.0f, 1.0f);
            if (cl <= 0.0f && cp <= 0.0f)
                continue;
            float nx = ((float)x + 0.5f) * inv, ny = ((float)y + 0.5f) * inv;
            if (cl <= 0.0f) {
                /* the stalk only */
                cv->cover[p] = cp;
                paint(cv->alb, p, petiole, 1.0f);
                cv->shade[p] = 1.0f + 0.3f * (1.0f - fabsf(lp.v) / lf->petiole_hw);
                continue;
            }
            cv->cover[p] = maxf(cl, cp);
            veinpt vp;
            vein_at(lf, &lp, &vp);
            float rr = clampf(lp.v / maxf(lp.wpx, 0.5f), -1.0f, 1.0f);
            float hue = vnoise_at(&nz[1], nx, ny) - 0.5f;
            rgbf c = rgb(base.r * (1.0f + 0.25f * hue), base.g * (1.0f + 0.06f * hue), base.b);
            c = rgb_mix(c, yellowed, mottle * smoothstepf(0.5f, 0.85f, vnoise_at(&nz[2], nx, ny)));
            /* leaf tissue has a fine grain */
            float grain = hash01((uint32_t)x, (uint32_t)y, salt) - 0.5f;
            c = rgb_scale(c, 1.0f + 0.05f * grain);
            /* veins: midrib and laterals raised and paler, the minor net faint */
            float t = lp.t;
            float mid = t > -0.02f && t < 0.97f ? line_cover(fabsf(lp.v), lf->mid_hw * (1.0f - 0.7f * t)) : 0.0f;
            float ar = fabsf(rr);
            float lat = line_cover(vp.lat, lf->lat_hw * (1.0f - 0.6f * ar)) * smoothstepf(0.97f, 0.8f, ar);
            float minor = line_cover(vp.minor, lf->minor_hw) * 0.45f * smoothstepf(1.0f, 0.85f, ar);
            float vw = maxf(maxf(mid, lat), minor) * vein_mix;
            c = rgb_mix(c, vein, vw);
            if (cp > cl)
                c = petiole;
            paint(cv->alb, p, c, 1.0f);
            cv->cell[p] = vp.cell;
            cv->edge[p] = vp.edge;
            float sh = 1.0f + side_l * rr + tilt * (t - 0.45f) - cup * rr * rr;
            sh += 0.16f * (vnoise_at(&nz[0], nx, ny) - 0.5f) + quilt * (vp.bump - 0.5f);
            sh += 0.15f * mid; /* the midrib stands proud and catches light */
            /* each areole bulges a little differently: the blade's pebbled look */
            sh += 0.06f * (hash01((uint32_t)vp.cell, 7u, salt) - 0.5f);
            cv->shade[p] = sh;
            float gt = (t - gl_t) / gl_s, gr = (rr - gl_r) / (gl_s * 2.0f);
            cv->gloss[p] = gloss_amt * expf(-(gt * gt + gr * gr));
        }
    mf_free(nz);
}

/* ---- pass 2: the classes */

/* A polygon of 5-7 vertices around (cx, cy), counter-clockwise in (x, y). */
typedef struct polygon {
    int n;
    float cx, cy;
    float x[8], y[8];
    float nx[8], ny[8], c[8]; /* edge i: inward unit normal and offset */
} polygon;

static void polygon_random(polygon *pg, float cx, float cy, float rad, mf_rng *r)
{
    pg->n = 5 + (int)mf_rng_below(r, 3);
    pg->cx = cx;
    pg->cy = cy;
    float a0 = unif(r, 0.0f, 2.0f * PI_F);
    for (int i = 0; i < pg->n; i++) {
        float a = a0 + 2.0f * PI_F * ((float)i + unif(r, -0.3f, 0.3f)) / (float)pg->n;
        float rr = rad * unif(r, 0.65f, 1.2f);
        pg->x[i] = cx + rr * cosf(a);
        pg->y[i] = cy + rr * sinf(a);
    }
    for (int i = 0; i < pg->n; i++) {
        int j = (i + 1) % pg->n;
        float ex = pg->x[j] - pg->x[i], ey = pg->y[j] - pg->y[i];
        float l = sqrtf(ex * ex + ey * ey);
        pg->nx[i] = -ey / l;
        pg->ny[i] = ex / l;
        pg->c[i] = pg->nx[i] * pg->x[i] + pg->ny[i] * pg->y[i];
    }
}

/* Signed distance to the intersection of the edges' inner half-planes
 * (positive inside; exact inside, a lower bound outside). That region is
 * convex even where the jittered vertices are not, which only trims the
 * lesion a little. */
static float polygon_sdist(const polygon *pg, float x, float y)
{
    float d = 1e9f;
    for (int i = 0; i < pg->n; i++)
        d = minf(d, pg->nx[i] * x + pg->ny[i] * y - pg->c[i]);
    return d;
}

typedef struct bbox {
    int x0, y0, x1, y1;
} bbox;

static bbox bbox_around(float cx, float cy, float rad, int size)
{
    bbox b;
    b.x0 = (int)maxf(0.0f, floorf(cx - rad));
    b.y0 = (int)maxf(0.0f, floorf(cy - rad));
    b.x1 = (int)minf((float)size, ceilf(cx + rad) + 1.0f);
    b.y1 = (int)minf((float)size, ceilf(cy + rad) + 1.0f);
    return b;
}

#define MAX_LESIONS 64
/* a lesion's areole when it has none: centred off the blade (drawn nowhere), or
 * grown over several (drawn in any areole, never on a vein) */
enum { NO_CELL = -2, ANY_CELL = -3 };

/* angular_leaf_spot (Pseudocercospora griseola): necrotic lesions that fill
 * areoles: the small veins stop the fungus, so the spots are angular, bounded
 * by veins on several sides, grey-brown to dark chocolate, often several in
 * neighbouring areoles and some with a yellow (chlorotic) margin. A lesion
 * larger than an areole has grown across the veinlets around it: it spreads
 * into the neighbouring areoles, its patches still cut apart by the veins. */
static void draw_lesions(canvas *cv, mf_rng *r)
{
    const leaf *lf = &cv->lf;
    int n = 10 + (int)(40.0f * powf(mf_rng_uniform(r), 1.3f)); /* mostly a dozen or two, sometimes many */
    MF_ASSERT(n <= MAX_LESIONS);
    polygon *pg = mf_alloc(MAX_LESIONS * sizeof *pg);
    int cells[MAX_LESIONS];
    float halo[MAX_LESIONS], halo_w[MAX_LESIONS], tan[MAX_LESIONS];
    rgbf col[MAX_LESIONS];
    /* per-leaf lesion colour: from fresh grey-brown to old dark brown */
    rgbf brown = rgb_mix(rgb(0.42f, 0.36f, 0.27f), rgb(0.26f, 0.16f, 0.09f), mf_rng_uniform(r));
    float lmin = lf->len * 0.018f, lmax = lf->len * 0.06f;
    float spread_rad = lf->len * 0.035f; /* about an areole's half-width */
    float cx = 0.0f, cy = 0.0f;
    for (int i = 0; i < n; i++) {
        float x, y;
        if (i > 0 && mf_rng_uniform(r) < 0.45f) {
            /* next to the previous lesion: lesions cluster and coalesce */
            x = cx + mf_rng_normal(r) * lmax * 1.2f;
            y = cy + mf_rng_normal(r) * lmax * 1.2f;
        } else {
            leaf_random_point(lf, r, 0.9f, &x, &y);
        }
        float rad = lmin * powf(lmax / lmin, mf_rng_uniform(r));
        polygon_random(&pg[i], x, y, rad, r);
        leafpt lp;
        leaf_point(lf, x, y, &lp);
        veinpt vp;
        vein_at(lf, &lp, &vp);
        int on_blade = leaf_sdist(lf, &lp) > 1.0f; /* a clustered one may fall off */
        cells[i] = !on_blade ? NO_CELL : rad > spread_rad ? ANY_CELL : vp.cell;
        halo[i] = mf_rng_uniform(r) < 0.5f && on_blade ? unif(r, 0.25f, 0.6f) : 0.0f;
        halo_w[i] = rad * unif(r, 0.4f, 0.9f);
        col[i] = rgb_scale(brown, unif(r, 0.8f, 1.2f));
        /* older spots dry out to a tan centre inside a dark border */
        tan[i] = mf_rng_uniform(r) < 0.3f ? unif(r, 0.3f, 0.7f) : 0.0f;
        cx = x;
        cy = y;
    }
    rgbf yellow = rgb_mix(cv->leaf_col, rgb(0.72f, 0.70f, 0.22f), 0.75f);
    int S = cv->size;
    uint32_t salt = (uint32_t)mf_rng_u64(r);
    /* halos first, so no halo paints over a neighbour's core */
    for (int i = 0; i < n; i++) {
        if (halo[i] <= 0.0f)
            continue;
        bbox b = bbox_around(pg[i].cx, pg[i].cy, lmax * 1.3f + halo_w[i], S);
        for (int y = b.y0; y < b.y1; y++)
            for (int x = b.x0; x < b.x1; x++) {
                size_t p = (size_t)y * S + x;
                if (cv->cover[p] <= 0.0f)
                    continue;
                float d = polygon_sdist(&pg[i], (float)x + 0.5f, (float)y + 0.5f);
                if (d > -halo_w[i])
                    paint(cv->alb, p, yellow, halo[i] * smoothstepf(-halo_w[i], 0.0f, d));
            }
    }
    for (int i = 0; i < n; i++) {
        bbox b = bbox_around(pg[i].cx, pg[i].cy, lmax * 1.3f, S);
        for (int y = b.y0; y < b.y1; y++)
            for (int x = b.x0; x < b.x1; x++) {
                size_t p = (size_t)y * S + x;
                if (cells[i] == ANY_CELL ? cv->cell[p] < 0 : cv->cell[p] != cells[i])
                    continue;
                float d = minf(polygon_sdist(&pg[i], (float)x + 0.5f, (float)y + 0.5f), cv->edge[p]);
                float a = clampf(d + 0.5f, 0.0f, 1.0f);
                if (a <= 0.0f)
                    continue;
                /* dead tissue: darker rim, mottled centre */
                float rim = 1.0f - 0.3f * smoothstepf(2.5f, 0.0f, d);
                float tex = 0.85f + 0.3f * hash01((uint32_t)x, (uint32_t)y, salt);
                rgbf c = rgb_mix(col[i], rgb(0.55f, 0.50f, 0.39f), tan[i] * smoothstepf(1.0f, 3.5f, d));
                paint(cv->alb, p, rgb_scale(c, rim * tex), a);
            }
    }
    mf_free(pg);
}

/* bean_rust (Uromyces appendiculatus): many small round raised pustules of
 * orange to rust-brown spores (uredinia), each in a pale yellow halo,
 * scattered over the blade, often in loose clusters. */
static void draw_pustules(canvas *cv, mf_rng *r)
{
    const leaf *lf = &cv->lf;
    int S = cv->size;
    int n = 20 + (int)(200.0f * powf(mf_rng_uniform(r), 1.5f));
    float base_r = (float)S * unif(r, 0.005f, 0.011f);
    rgbf orange = rgb(0.80f, 0.43f, 0.12f), rust = rgb(0.56f, 0.26f, 0.09f);
    float age = mf_rng_uniform(r); /* young pustules orange, old ones rust-brown */
    rgbf halo_col = rgb_mix(cv->leaf_col, rgb(0.80f, 0.80f, 0.38f), 0.85f);
    float halo_a = unif(r, 0.4f, 0.85f);
    int n_clusters = 1 + (int)mf_rng_below(r, 4);
    float ccx[4], ccy[4], csig = lf->len * unif(r, 0.08f, 0.2f);
    for (int c = 0; c < n_clusters; c++)
        leaf_random_point(lf, r, 0.7f, &ccx[c], &ccy[c]);
    float clustered = unif(r, 0.0f, 0.7f);
    float *px = mf_alloc((size_t)n * 4 * sizeof *px);
    float *py = px + n, *pr = px + 2 * n, *pa = px + 3 * n;
    for (int i = 0; i < n; i++) {
        if (mf_rng_uniform(r) < clustered) {
            int c = (int)mf_rng_below(r, (uint32_t)n_clusters);
            px[i] = ccx[c] + mf_rng_normal(r) * csig;
            py[i] = ccy[c] + mf_rng_normal(r) * csig;
        } else {
            leaf_random_point(lf, r, 0.95f, &px[i], &py[i]);
        }
        pr[i] = base_r * unif(r, 0.55f, 1.4f);
        pa[i] = clampf(age + unif(r, -0.3f, 0.3f), 0.0f, 1.0f);
    }
    for (int i = 0; i < n; i++) {
        float hr = pr[i] * 2.4f;
        bbox b = bbox_around(px[i], py[i], hr, S);
        for (int y = b.y0; y < b.y1; y++)
            for (int x = b.x0; x < b.x1; x++) {
                size_t p = (size_t)y * S + x;
                if (cv->cover[p] <= 0.0f)
                    continue;
                float dx = (float)x + 0.5f - px[i], dy = (float)y + 0.5f - py[i];
                float d = sqrtf(dx * dx + dy * dy);
                if (d < hr)
                    paint(cv->alb, p, halo_col, halo_a * (1.0f - smoothstepf(pr[i], hr, d)));
            }
    }
    for (int i = 0; i < n; i++) {
        bbox b = bbox_around(px[i], py[i], pr[i] + 1.0f, S);
        rgbf c0 = rgb_mix(orange, rust, pa[i]);
        for (int y = b.y0; y < b.y1; y++)
            for (int x = b.x0; x < b.x1; x++) {
                size_t p = (size_t)y * S + x;
                if (cv->cover[p] <= 0.0f)
                    continue;
                float dx = (float)x + 0.5f - px[i], dy = (float)y + 0.5f - py[i];
                float d = sqrtf(dx * dx + dy * dy);
                float a = clampf(pr[i] + 0.5f - d, 0.0f, 1.0f);
                if (a <= 0.0f)
                    continue;
                /* a raised dome: lit on the side facing the light, darker rim */
                float lit = (dx * cv->light_x + dy * cv->light_y) / pr[i];
                float s = (1.0f + 0.25f * lit) * (1.0f - 0.3f * smoothstepf(0.6f, 1.0f, d / pr[i]));
                paint(cv->alb, p, rgb_scale(c0, s), a);
            }
    }
    mf_free(px);
}

/* Every class: a few tiny natural blemishes (pale flecks, dark specks of dirt
 * or old damage), so the mere presence of a spot is not the class. */
static void draw_blemishes(canvas *cv, mf_rng *r)
{
    const leaf *lf = &cv->lf;
    int S = cv->size;
    int n = (int)mf_rng_below(r, 5);
    for (int i = 0; i < n; i++) {
        float x, y;
        leaf_random_point(lf, r, 0.9f, &x, &y);
        float rad = (float)S * unif(r, 0.002f, 0.006f);
        int dark = mf_rng_uniform(r) < 0.35f;
        rgbf c = dark ? rgb(0.30f, 0.24f, 0.12f) : rgb_mix(cv->leaf_col, rgb(0.7f, 0.75f, 0.4f), 0.6f);
        float alpha = dark ? unif(r, 0.3f, 0.6f) : unif(r, 0.3f, 0.7f);
        bbox b = bbox_around(x, y, rad + 1.0f, S);
        for (int yy = b.y0; yy < b.y1; yy++)
            for (int xx = b.x0; xx < b.x1; xx++) {
                size_t p = (size_t)yy * S + xx;
                float dx = (float)xx + 0.5f - x, dy = (float)yy + 0.5f - y;
                float a = clampf(rad + 0.5f - sqrtf(dx * dx + dy * dy), 0.0f, 1.0f);
                if (a > 0.0f && cv->cover[p] > 0.0f)
                    paint(cv->alb, p, c, a * alpha);
            }
    }
}

/* ---- pass 3: background, shadow, composite, photo lighting */

enum { BG_SOIL, BG_DARK, BG_FOLIAGE, BG_KINDS };

static void draw_background_and_compose(canvas *cv, mf_rng *r)
{
    int S = cv->size;
    int kind = (int)mf_rng_below(r, BG_KINDS);
    vnoise *nz = mf_alloc(4 * sizeof *nz);
    vnoise_init(&nz[0], 3 + (int)mf_rng_below(r, 3), r);
    vnoise_init(&nz[1], 7 + (int)mf_rng_below(r, 6), r);
    vnoise_init(&nz[2], 16 + (int)mf_rng_below(r, 10), r);
    vnoise_init(&nz[3], 48 + (int)mf_rng_below(r, 16), r);
    /* Soil: dry to moist brown with darker damp patches, clods and grit. Dark:
     * a shaded gap under the canopy. Foliage: other bean plants out of focus,
     * greens with dark gaps, sunlit flecks and some soil or dead leaves. */
    rgbf soil =
        rgb_scale(rgb(0.40f + unif(r, -0.04f, 0.04f), 0.29f, 0.19f + unif(r, -0.03f, 0.03f)), unif(r, 0.55f, 1.15f));
    rgbf dark = rgb_scale(rgb(0.06f, 0.07f, 0.045f), unif(r, 0.6f, 1.6f));
    rgbf fol_dark = rgb(0.04f, 0.07f, 0.03f);
    rgbf fol_mid = rgb_scale(rgb(0.20f + unif(r, -0.04f, 0.06f), 0.34f, 0.11f), unif(r, 0.7f, 1.2f));
    rgbf fol_lit = rgb(0.48f, 0.58f, 0.26f), fol_brown = rgb(0.33f, 0.26f, 0.16f);
    /* The leaf casts a soft shadow on a near background; foliage is further. */
    float sh_amt = kind == BG_SOIL ? unif(r, 0.25f, 0.55f) : kind == BG_FOLIAGE ? unif(r, 0.1f, 0.35f) : 0.2f;
    float sh_len = (float)S * unif(r, 0.01f, 0.045f);
    float sh_dx = -sh_len * cv->light_x, sh_dy = -sh_len * cv->light_y;
    float sh_soft = (float)S * unif(r, 0.01f, 0.03f);
    /* The photo: exposure, a lighting gradient across the frame, vignetting
     * and a white-balance cast. */
    float expo = unif(r, 0.8f, 1.2f);
    float gx = unif(r, -0.35f, 0.35f), gy = unif(r, -0.35f, 0.35f), vig = unif(r, 0.0f, 0.35f);
    float wb[3];
    for (int c = 0; c < 3; c++)
        wb[c] = 1.0f + 0.05f * mf_rng_normal(r);
    float inv = 1.0f / (float)S;
    uint32_t salt = (uint32_t)mf_rng_u64(r);

    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            size_t p = (size_t)y * S + x;
            float nx = ((float)x + 0.5f) * inv, ny = ((float)y + 0.5f) * inv;
            float cov = cv->cover[p];
            rgbf bg = rgb(0, 0, 0);
            if (cov < 1.0f) {
                float n0 = vnoise_at(&nz[0], nx, ny), n1 = vnoise_at(&nz[1], nx, ny);
                switch (kind) {
                case BG_SOIL: {
                    float n2 = vnoise_at(&nz[2], nx, ny), n3 = vnoise_at(&nz[3], nx, ny);
                    float w = hash01((uint32_t)x, (uint32_t)y, salt);
                    float m = 0.55f * n0 + 0.3f * n1 + 0.15f * n2; /* damp (dark) vs dry patches */
                    bg = rgb_scale(soil, (0.55f + 0.8f * m) * (0.8f + 0.4f * n3) * (0.88f + 0.24f * w));
                    bg = rgb_mix(bg, rgb_scale(soil, 1.3f), 0.45f * smoothstepf(0.7f, 0.9f, n2)); /* dry clods */
                    bg = rgb_mix(bg, rgb(0.55f, 0.5f, 0.42f), 0.25f * smoothstepf(0.8f, 0.95f, n3)); /* grit */
                    break;
                }
                case BG_DARK: bg = rgb_scale(dark, 0.6f + 0.8f * n0 + 0.2f * n1); break;
                default: {
                    /* out of focus: only the coarse fields, wide soft transitions */
                    float n2 = vnoise_at(&nz[2], nx, ny);
                    float g = 0.55f * n0 + 0.35f * n1 + 0.1f * n2;
                    bg = rgb_mix(fol_dark, fol_mid, smoothstepf(0.25f, 0.7f, g));
                    bg = rgb_mix(bg, fol_lit, 0.6f * smoothstepf(0.55f, 0.85f, 0.7f * n1 + 0.3f * n0));
                    bg = rgb_mix(bg, fol_brown, 0.6f * smoothstepf(0.55f, 0.9f, 0.6f * n0 + 0.4f * (1.0f - n1)));
                    break;
                }
                }
                /* the leaf's shadow: its distance field, displaced and softened */
                float sx = (float)x + 0.5f - sh_dx, sy = (float)y + 0.5f - sh_dy;
                if (!leaf_far(&cv->lf, sx, sy, sh_soft)) {
                    leafpt lp;
                    leaf_point(&cv->lf, sx, sy, &lp);
                    float sd = leaf_sdist(&cv->lf, &lp);
                    bg = rgb_scale(bg, 1.0f - sh_amt * smoothstepf(-sh_soft, sh_soft, sd));
                }
            }
            rgbf lc = rgb(0, 0, 0);
            if (cov > 0.0f) {
                const float *a = cv->alb + 3 * p;
                float s = cv->shade[p], g = cv->gloss[p];
                lc = rgb(a[0] * s + g, a[1] * s + g, a[2] * s + g);
            }
            rgbf c = rgb_mix(bg, lc, cov);
            float dx = nx - 0.5f, dy = ny - 0.5f;
            float gain = expo * (1.0f + gx * dx + gy * dy) * (1.0f - vig * 2.0f * (dx * dx + dy * dy));
            float *o = cv->img + 3 * p;
            o[0] = c.r * gain * wb[0];
            o[1] = c.g * gain * wb[1];
            o[2] = c.b * gain * wb[2];
        }
    mf_free(nz);
}

/* Pass 4: a touch of defocus (a [1 2 1]^2 blur mixed in), sensor noise, and
 * rounding to RGB8. */
static void finish(canvas *cv, uint8_t *out, mf_rng *r)
{
    int S = cv->size;
    float blur = unif(r, 0.0f, 0.6f);
    float sigma = unif(r, 1.0f, 4.0f) / 255.0f;
    float *tmp = cv->alb; /* reused: the albedo is no longer needed */
    /* horizontal then vertical pass, edges clamped */
    for (int y = 0; y < S; y++) {
        const float *row = cv->img + (size_t)y * S * 3;
        float *dst = tmp + (size_t)y * S * 3;
        for (int x = 0; x < S; x++) {
            int xl = x > 0 ? x - 1 : 0, xr = x < S - 1 ? x + 1 : S - 1;
            for (int c = 0; c < 3; c++)
                dst[x * 3 + c] = 0.25f * row[xl * 3 + c] + 0.5f * row[x * 3 + c] + 0.25f * row[xr * 3 + c];
        }
    }
    for (int y = 0; y < S; y++) {
        int yu = y > 0 ? y - 1 : 0, yd = y < S - 1 ? y + 1 : S - 1;
        for (int x = 0; x < S; x++) {
            float nz[4];
            normal_pair(r, &nz[0], &nz[1]);
            normal_pair(r, &nz[2], &nz[3]);
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * S + x) * 3 + c;
                float b = 0.25f * tmp[((size_t)yu * S + x) * 3 + c] + 0.5f * tmp[i] +
                    0.25f * tmp[((size_t)yd * S + x) * 3 + c];
                /* luminance noise shared by the channels plus a little chroma noise */
                float v = mixf(cv->img[i], b, blur) + sigma * (nz[0] + 0.5f * nz[c + 1]);
                out[i] = (uint8_t)(clampf(v, 0.0f, 1.0f) * 255.0f + 0.5f);
            }
        }
    }
}

void mf_synth_draw(uint8_t *rgb8, int size, int label, uint64_t seed)
{
    mf_synth_draw_ex(rgb8, NULL, size, label, seed);
}

void mf_synth_draw_ex(uint8_t *rgb8, uint8_t *leaf_mask, int size, int label, uint64_t seed)
{
    MF_ASSERT(rgb8 && size >= MF_SYNTH_MIN_SIZE && size <= MF_SYNTH_MAX_SIZE);
    MF_ASSERT(label >= 0 && label < MF_SYNTH_NUM_CLASSES);
    canvas cv;
    memset(&cv, 0, sizeof cv);
    cv.size = size;
    cv.n = (size_t)size * size;
    cv.alb = mf_alloc(cv.n * 3 * sizeof(float));
    cv.img = mf_alloc(cv.n * 3 * sizeof(float));
    cv.shade = mf_alloc(cv.n * sizeof(float));
    cv.gloss = mf_alloc(cv.n * sizeof(float));
    cv.cover = mf_alloc(cv.n * sizeof(float));
    cv.edge = mf_alloc(cv.n * sizeof(float));
    cv.cell = mf_alloc(cv.n * sizeof(int32_t));
    /* Independent streams per aspect: the leaf and the background of a seed
     * are the same whatever the label, so nothing but the disease features
     * carries the class. */
    mf_rng r_leaf, r_bg, r_cls, r_fin, r_light;
    mf_rng_seed2(&r_leaf, seed, 1);
    mf_rng_seed2(&r_bg, seed, 2);
    mf_rng_seed2(&r_cls, seed, 3);
    mf_rng_seed2(&r_fin, seed, 4);
    mf_rng_seed2(&r_light, seed, 5);
    /* the sun: it lights the rust pustules' domes and throws the leaf's shadow */
    float sun = unif(&r_light, 0.0f, 2.0f * PI_F);
    cv.light_x = cosf(sun);
    cv.light_y = sinf(sun);
    leaf_init(&cv.lf, size, &r_leaf);
    draw_leaf(&cv, &r_leaf);
    draw_blemishes(&cv, &r_cls);
    if (label == LABEL_ALS)
        draw_lesions(&cv, &r_cls);
    else if (label == LABEL_RUST)
        draw_pustules(&cv, &r_cls);
    draw_background_and_compose(&cv, &r_bg);
    finish(&cv, rgb8, &r_fin);
    if (leaf_mask)
        for (size_t i = 0; i < cv.n; i++)
            leaf_mask[i] = (uint8_t)(cv.cover[i] * 255.0f + 0.5f);
    mf_free(cv.alb);
    mf_free(cv.img);
    mf_free(cv.shade);
    mf_free(cv.gloss);
    mf_free(cv.cover);
    mf_free(cv.edge);
    mf_free(cv.cell);
}
