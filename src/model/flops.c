/* flops.c: analytic FLOP counts of a model's forward and backward passes (see
 * flops.h). Reads each layer's kind (l->ops->kind), its weight slots' shapes
 * (Keras layout: Conv2D kernel (K,K,Cin,F), DepthwiseConv2D (K,K,C,M), Dense
 * (Cin,U)) and its output shape (batch 0: (0,Ho,Wo,C) or (0,U)). */
#include <string.h>
#include "flops.h"
#include "model_internal.h"

/* Elements of one sample of a shape (batch axis excluded). */
static double sample_numel(const mf_shape *s)
{
    double n = 1.0;
    for (int i = 1; i < s->ndim; i++)
        n *= s->d[i];
    return n;
}

/* Forward FLOPs of layer l for a batch of N. *is_matmul: 1 for the kinds
 * whose backward repeats the forward product once for dW and once for dx. */
static double layer_forward(const mf_layer *l, int N, int *is_matmul)
{
    const char *kind = l->ops->kind;
    double out = (double)N * sample_numel(&l->out_shape);
    int bias = mf_layer_slot(l, "bias") != NULL;
    *is_matmul = 0;
    if (strcmp(kind, "Conv2D") == 0) {
        const mf_slot *w = mf_layer_slot(l, "kernel"); /* (K, K, Cin, F) */
        *is_matmul = 1;
        return 2.0 * out * w->shape.d[0] * w->shape.d[1] * w->shape.d[2] + (bias ? out : 0.0);
    }
    if (strcmp(kind, "DepthwiseConv2D") == 0) {
        const mf_slot *w = mf_layer_slot(l, "depthwise_kernel"); /* (KH, KW, C, M): KH*KW per output */
        *is_matmul = 1;
        return 2.0 * out * w->shape.d[0] * w->shape.d[1] + (bias ? out : 0.0);
    }
    if (strcmp(kind, "SeparableConv2D") == 0) { /* the depthwise part, then the 1x1 product */
        const mf_slot *dw = mf_layer_slot(l, "depthwise_kernel"), *pw = mf_layer_slot(l, "pointwise_kernel");
        double pixels = out / pw->shape.d[3], cm = pw->shape.d[2];
        *is_matmul = 1;
        return 2.0 * pixels * cm * dw->shape.d[0] * dw->shape.d[1] + 2.0 * out * cm + (bias ? out : 0.0);
    }
    if (strcmp(kind, "Dense") == 0) {
        const mf_slot *w = mf_layer_slot(l, "kernel"); /* (Cin, U) */
        *is_matmul = 1;
        return 2.0 * out * w->shape.d[0] + (bias ? out : 0.0);
    }
    if (strcmp(kind, "BatchNormalization") == 0) /* batch statistics, normalise, scale and shift */
        return (l->trainable ? 4.0 : 2.0) * out;
    if (strcmp(kind, "ReLU") == 0 || strcmp(kind, "Dropout") == 0 || strcmp(kind, "Activation") == 0 ||
        strcmp(kind, "Rescaling") == 0)
        return out;
    if (strcmp(kind, "Add") == 0)
        return out * (l->n_in - 1);
    if (strcmp(kind, "GlobalAveragePooling2D") == 0 || strcmp(kind, "GlobalMaxPooling2D") == 0 ||
        strcmp(kind, "MaxPooling2D") == 0 || strcmp(kind, "AveragePooling2D") == 0)
        return (double)N * sample_numel(&l->in_shape[0]); /* about one operation per input cell */
    return 0.0; /* ZeroPadding2D, Flatten, Concatenate: copies */
}

double mf_model_flops(const mf_model *m, int N, int training)
{
    MF_ASSERT(m->built);
    MF_ASSERT(N > 0);
    /* need[i]: node i's output needs a gradient (as in mf_model_backward,
     * which is never asked for the input's gradient here) */
    unsigned char *need = mf_alloc((size_t)m->n_nodes);
    need[0] = 0;
    double total = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const mf_model_node *nd = &m->nodes[i];
        const mf_layer *l = nd->layer;
        int trains = mf_layer_has_trainable(l), din = 0;
        for (int k = 0; k < nd->n_in; k++)
            din |= need[nd->in[k]];
        need[i] = (unsigned char)(trains || din);
        int is_matmul;
        double fwd = layer_forward(l, N, &is_matmul);
        total += fwd;
        if (!training || !need[i])
            continue;
        if (is_matmul)
            total += (trains ? fwd : 0.0) + (din ? fwd : 0.0);
        else
            total += 2.0 * fwd;
    }
    mf_free(need);
    return total;
}
