/* plan.h: the memory plan of one forward (+ backward) pass: which node runs,
 * which work is fused into a neighbour, and where every activation and every
 * activation gradient lives in one arena.
 *
 * A tensor is kept only while something reads it: from the step that writes it
 * to its last reader, forward or backward (a tensor's live interval). Tensors
 * whose intervals do not overlap share memory; offsets are chosen greedily,
 * largest first (TFLite's "greedy by size"). So:
 *   - inference (and a frozen prefix in training) holds a few activations at a
 *     time, and no gradients at all;
 *   - in training, an activation lives until the backward step that reads it
 *     (only layers whose backward reads it: MF_READS_*), and an activation
 *     gradient only from its first writer to its reader, so a few buffers
 *     serve all of them;
 *   - a BatchNorm followed by its only consumer, a ReLU, runs as one pass
 *     (ops->fuses_relu): the BatchNorm output is never stored, and backward
 *     takes the ReLU's mask from the ReLU's output;
 *   - a ZeroPadding2D whose only consumer takes padding (ops->folds_pad) is
 *     never materialised: the consumer reads the unpadded tensor;
 *   - a BatchNorm in inference mode that nothing back-propagates through (a
 *     frozen base, evaluation, prediction) is folded into the convolution in
 *     front of it (ops->folds_bn): a derived copy of its weights, scaled per
 *     output channel, plus a bias; the weights themselves keep Keras' layout.
 * Timeline: node i runs forward at step i and backward at step 2n - i, so the
 * output's backward (step n) follows every forward step. */
#ifndef MF_PLAN_H
#define MF_PLAN_H
#include <stddef.h>

#define MF_PLAN_NONE ((size_t)-1)

typedef struct mf_plan_node {
    int run; /* 0: its work is done by a neighbour (fused or folded) */
    int in[MF_LAYER_MAX_INPUTS]; /* nodes whose activations it reads as inputs */
    int out; /* node whose act/dact it writes: itself, or its fused ReLU */
    int fuse_relu; /* 1: the ReLU node `out` is applied in this pass */
    float relu_max;
    int pad_top, pad_left; /* padding folded in from a ZeroPadding2D */
    int fold_bn; /* BatchNorm node folded into this convolution, or 0 */
    size_t fold; /* its folded weights and bias: floats into the fold buffer */
    int need_grad; /* backward reaches this node */
    int trainable; /* its layer's flag when planned (a frozen BatchNorm folds differently) */
    size_t act, dact; /* floats into the arena, or MF_PLAN_NONE */
} mf_plan_node;

typedef struct mf_plan {
    int n; /* nodes */
    int N; /* batch the offsets are for */
    int backward; /* planned for a backward pass */
    int input_grad; /* ... that writes the input gradient */
    int infer; /* the forward pass runs in inference mode */
    int keep_all; /* no plan: everything kept, nothing fused (tests) */
    mf_plan_node *node; /* n */
    size_t floats; /* arena size the plan needs */
    size_t fold_floats; /* folded weights and biases, all convolutions */
} mf_plan;

struct mf_model;
/* Make (or keep, if nothing it depends on changed) the plan for a batch of N.
 * need_grad[i] must hold for every node whether backward reaches it (all 0
 * without backward). Allocation through mf_alloc; mf_plan_free releases it. */
void mf_plan_make(mf_plan *p, const struct mf_model *m, int N, int infer, int backward, int input_grad,
                  const unsigned char *need_grad);
/* keep_all: every tensor live for the whole pass, no fusion, no sharing: the
 * reference that tests compare the plan with. */
void mf_plan_free(mf_plan *p);
#endif
