/* plan.c: the memory plan (see plan.h): fusions, live intervals, and offsets
 * in one arena chosen greedily by size. */
#include <stdlib.h>
#include <string.h>
#include "model_internal.h"
#include "plan.h"

/* One tensor to place: an activation or an activation gradient. */
typedef struct buf {
    size_t size; /* floats, a multiple of 16 (64 bytes) */
    int start, end; /* live from step start to step end, both included */
    int node, grad; /* whose tensor */
    size_t off;
} buf;

static int by_size(const void *a, const void *b)
{
    const buf *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->start != y->start) /* ties broken the same way every time */
        return x->start < y->start ? -1 : 1;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->grad - y->grad;
}

static int by_off(const void *a, const void *b)
{
    const buf *x = *(const buf *const *)a, *y = *(const buf *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Greedy by size: each buffer, largest first, goes to the lowest offset where
 * it overlaps no placed buffer that is live at the same time. Returns the
 * arena size. */
static size_t place(buf *b, int nb)
{
    qsort(b, (size_t)nb, sizeof *b, by_size);
    buf **live = mf_alloc((size_t)(nb ? nb : 1) * sizeof *live);
    size_t total = 0;
    for (int i = 0; i < nb; i++) {
        int nl = 0;
        for (int j = 0; j < i; j++)
            if (b[j].start <= b[i].end && b[i].start <= b[j].end)
                live[nl++] = &b[j];
        qsort(live, (size_t)nl, sizeof *live, by_off);
        size_t off = 0;
        for (int j = 0; j < nl; j++) {
            if (off + b[i].size <= live[j]->off)
                break; /* fits in the gap below live[j] */
            if (live[j]->off + live[j]->size > off)
                off = live[j]->off + live[j]->size;
        }
        b[i].off = off;
        if (off + b[i].size > total)
            total = off + b[i].size;
    }
    /* always checked (plans are made a few times per run): no two tensors
     * that are live at the same step share a float */
    for (int i = 0; i < nb; i++)
        for (int j = i + 1; j < nb; j++)
            if (b[j].start <= b[i].end && b[i].start <= b[j].end)
                MF_ASSERT(b[i].off + b[i].size <= b[j].off || b[j].off + b[j].size <= b[i].off);
    mf_free(live);
    return total;
}

static int same_plan(const mf_plan *p, const mf_model *m, int N, int infer, int backward, int input_grad,
                     const unsigned char *need_grad)
{
    if (!p->node || p->n != m->n_nodes || p->N != N || p->infer != infer || p->backward != backward ||
        p->input_grad != input_grad || p->keep_all != ((m->keep & MF_KEEP_ALL) != 0))
        return 0;
    for (int i = 0; i < p->n; i++)
        if (p->node[i].need_grad != need_grad[i] || p->node[i].trainable != (i > 0 && m->nodes[i].layer->trainable))
            return 0;
    return 1;
}

/* Which work runs where: BatchNorm + its only consumer ReLU in one pass; a
 * ZeroPadding2D read directly by its only consumer when that takes padding. */
static void fuse(mf_plan *p, const mf_model *m, int infer)
{
    int n = m->n_nodes;
    int *uses = mf_alloc((size_t)n * sizeof *uses), *user = mf_alloc((size_t)n * sizeof *user);
    for (int j = 1; j < n; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++) {
            uses[m->nodes[j].in[k]]++;
            user[m->nodes[j].in[k]] = j;
        }
    for (int i = 1; i < n - 1; i++) {
        const mf_layer *l = m->nodes[i].layer;
        if (uses[i] != 1)
            continue;
        int j = user[i];
        const mf_layer *next = m->nodes[j].layer;
        int pads[4];
        if (l->ops->fuses_relu && mf_relu_clamp(next) > 0.0f) {
            p->node[i].out = j;
            p->node[i].fuse_relu = 1;
            p->node[i].relu_max = mf_relu_clamp(next);
            p->node[j].run = 0;
        } else if (mf_zero_pad2d_pads(l, pads) && next->ops->folds_pad && !p->node[j].pad_top && !p->node[j].pad_left) {
            p->node[i].run = 0;
            p->node[j].in[0] = p->node[i].in[0];
            p->node[j].pad_top = pads[0];
            p->node[j].pad_left = pads[2];
        }
    }
    /* then convolution + (BatchNorm + ReLU) when the BatchNorm runs in
     * inference mode and backward does not reach it */
    p->fold_floats = 0;
    for (int c = 1; c < n - 1; c++) {
        const mf_layer *l = m->nodes[c].layer;
        if (uses[c] != 1 || !p->node[c].run || p->node[c].out != c || !l->ops->folds_bn)
            continue;
        int b = user[c];
        const mf_layer *bn = m->nodes[b].layer;
        int bn_infer = infer || (bn->ops->infer_when_frozen && !bn->trainable);
        if (!mf_batchnorm_affine(bn, NULL, NULL) || !bn_infer || p->node[b].need_grad || !p->node[b].run)
            continue;
        p->node[c].out = p->node[b].out;
        p->node[c].fuse_relu = p->node[b].fuse_relu;
        p->node[c].relu_max = p->node[b].relu_max;
        p->node[c].fold_bn = b;
        p->node[c].fold = p->fold_floats;
        p->node[b].run = 0;
        size_t kernel = l->slot[0].numel, F = (size_t)l->out_shape.d[l->out_shape.ndim - 1];
        p->fold_floats += (kernel + 15) / 16 * 16 + 2 * F; /* weights, bias, scale */
    }
    mf_free(uses);
    mf_free(user);
}

static void widen(int *start, int *end, int t)
{
    if (*start < 0 || t < *start)
        *start = t;
    if (t > *end)
        *end = t;
}

void mf_plan_make(mf_plan *p, const mf_model *m, int N, int infer, int backward, int input_grad,
                  const unsigned char *need_grad)
{
    if (same_plan(p, m, N, infer, backward, input_grad, need_grad))
        return;
    int n = m->n_nodes;
    if (p->n != n) {
        mf_free(p->node);
        p->node = mf_alloc((size_t)n * sizeof *p->node);
        p->n = n;
    }
    p->N = N;
    p->infer = infer;
    p->backward = backward;
    p->input_grad = input_grad;
    p->keep_all = (m->keep & MF_KEEP_ALL) != 0;
    for (int i = 0; i < n; i++) {
        mf_plan_node *pn = &p->node[i];
        memset(pn, 0, sizeof *pn);
        pn->run = i > 0;
        for (int k = 0; k < m->nodes[i].n_in; k++)
            pn->in[k] = m->nodes[i].in[k];
        pn->out = i;
        pn->need_grad = need_grad[i];
        pn->trainable = i > 0 && m->nodes[i].layer->trainable;
        pn->act = pn->dact = MF_PLAN_NONE;
    }
    p->fold_floats = 0;
    if (!p->keep_all)
        fuse(p, m, infer);

    /* live intervals; step i: forward of node i, step 2n - i: its backward */
    const int END = 2 * n + 1;
    int *as = mf_alloc((size_t)n * 4 * sizeof *as), *ae = as + n, *gs = as + 2 * n, *ge = as + 3 * n;
    for (int i = 0; i < n; i++)
        as[i] = ae[i] = gs[i] = ge[i] = -1;
    as[0] = ae[0] = 0; /* the input, copied in before step 1 */
    for (int j = 1; j < n; j++) {
        const mf_plan_node *pj = &p->node[j];
        if (!pj->run)
            continue;
        widen(&as[pj->out], &ae[pj->out], j);
        for (int k = 0; k < m->nodes[j].n_in; k++)
            widen(&as[pj->in[k]], &ae[pj->in[k]], j);
    }
    int writer_of_out = n - 1;
    for (int j = 1; j < n; j++)
        if (p->node[j].run && p->node[j].out == n - 1)
            writer_of_out = j;
    ae[n - 1] = END; /* the caller reads the output after the pass */
    if (backward) {
        for (int j = n - 1; j >= 1; j--) {
            const mf_plan_node *pj = &p->node[j];
            if (!pj->run || !pj->need_grad)
                continue;
            int t = 2 * n - j;
            unsigned reads = m->nodes[j].layer->ops->bwd_reads;
            if (!reads)
                reads = MF_READS_ALL_IN | MF_READS_OUT;
            for (int k = 0; k < m->nodes[j].n_in; k++) {
                int x = pj->in[k];
                if (reads & (MF_READS_IN0 << k))
                    widen(&as[x], &ae[x], t);
                if (need_grad[x])
                    widen(&gs[x], &ge[x], t); /* this backward writes dact[x] */
            }
            if (reads & MF_READS_OUT)
                widen(&as[pj->out], &ae[pj->out], t);
            widen(&gs[pj->out], &ge[pj->out], t); /* reads its output gradient */
        }
        widen(&gs[n - 1], &ge[n - 1], 2 * n - writer_of_out); /* dout is copied in first */
        if (input_grad)
            widen(&gs[0], &ge[0], END); /* copied out after the pass */
    }

    /* In place (ops->inplace, e.g. the residual Add): the output takes the
     * memory of an input read for the last time by this very step, and in
     * backward an input gradient first written here takes the memory of the
     * output gradient, read for the last time here. The pair becomes one
     * tensor live over both intervals. act_of[x] / grad_of[x]: the tensor
     * whose memory x's activation / gradient uses. */
    int *act_of = mf_alloc((size_t)n * 2 * sizeof *act_of), *grad_of = act_of + n;
    for (int x = 0; x < n; x++)
        act_of[x] = grad_of[x] = x;
    if (p->keep_all) /* everything for the whole pass: nothing can share */
        for (int x = 0; x < n; x++) {
            if (as[x] >= 0)
                as[x] = 0, ae[x] = END;
            if (gs[x] >= 0)
                gs[x] = 0, ge[x] = END;
        }
    for (int j = 1; j < n && !p->keep_all; j++) {
        const mf_plan_node *pj = &p->node[j];
        if (!pj->run || !m->nodes[j].layer->ops->inplace)
            continue;
        int o = pj->out;
        for (int k = 0; k < m->nodes[j].n_in; k++) {
            int x = pj->in[k], r = act_of[x];
            if (x != o && ae[r] == j && ae[x] == j && act_of[o] == o && x != n - 1 &&
                mf_shape_eq(&m->nodes[x].shape, &m->nodes[o].shape)) {
                act_of[o] = r;
                if (ae[o] > ae[r])
                    ae[r] = ae[o];
                as[o] = -1;
            }
        }
        int t = 2 * n - j;
        if (!backward || !pj->need_grad || gs[o] < 0)
            continue;
        int r = o;
        while (grad_of[r] != r)
            r = grad_of[r];
        for (int k = 0; k < m->nodes[j].n_in; k++) {
            int x = pj->in[k];
            /* with more than two inputs, only one read once: a repeated input
             * adds to its gradient, which must then not be what a later
             * input reads */
            int repeats = 0;
            for (int q = 0; q < m->nodes[j].n_in; q++)
                repeats += q != k && pj->in[q] == x;
            if (m->nodes[j].n_in > 2 && repeats)
                continue;
            if (gs[x] == t && grad_of[x] == x && ge[r] == t && x != o && x != 0 && (k == 0 || pj->in[0] != x) &&
                mf_shape_eq(&m->nodes[x].shape, &m->nodes[o].shape)) {
                grad_of[x] = r;
                ge[r] = ge[x];
                gs[x] = -1;
                break; /* one input only: the other must not see its writes */
            }
        }
    }

    buf *b = mf_alloc((size_t)(2 * n) * sizeof *b);
    int nb = 0;
    for (int x = 0; x < n; x++) {
        size_t size = (mf_shape_sample_numel(&m->nodes[x].shape) * (size_t)N + 15) / 16 * 16;
        if (as[x] >= 0)
            b[nb++] = (buf){size, as[x], ae[x], x, 0, 0};
        if (gs[x] >= 0)
            b[nb++] = (buf){size, gs[x], ge[x], x, 1, 0};
    }
    p->floats = place(b, nb);
    for (int i = 0; i < nb; i++) {
        if (b[i].grad)
            p->node[b[i].node].dact = b[i].off;
        else
            p->node[b[i].node].act = b[i].off;
    }
    for (int x = 0; x < n; x++) { /* aliases point where their owner went */
        int r = x;
        while (act_of[r] != r)
            r = act_of[r];
        p->node[x].act = p->node[r].act;
        for (r = x; grad_of[r] != r;) /* a chain: o's owner may itself have */
            r = grad_of[r]; /* been given to a later Add's output */
        p->node[x].dact = p->node[r].dact;
    }
    mf_free(act_of);
    mf_free(b);
    mf_free(as);
}

void mf_plan_free(mf_plan *p)
{
    mf_free(p->node);
    memset(p, 0, sizeof *p);
}
