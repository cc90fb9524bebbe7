/* layer.h: the private layer interface. Each layer kind lives in its own file
 * (conv2d.c, batchnorm.c, ...) and ends with its ops table and its public
 * constructor. The common header `mf_layer` is the first member of every
 * kind's struct (ggml's iface / Lua's CommonHeader pattern):
 *
 *     typedef struct { mf_layer base; int filters, k, stride; ... } conv2d;
 *
 * Conventions: NHWC; N batch, H/W input height/width, C input channels,
 * Ho/Wo output extents, K kernel size, S stride.
 *
 * Backward contract: parameter gradients are ACCUMULATED (+=); the user zeroes
 * them once per optimizer step, so accumulation over micro-batches needs no
 * special case. An input gradient din[i] is OVERWRITTEN when ex->din_first[i]
 * (this layer is the first of the input's consumers to back-propagate) and
 * accumulated otherwise (the fork before a residual Add). So no pass over the
 * whole activation-gradient arena is needed to zero it before backward. */
#ifndef MF_LAYER_H
#define MF_LAYER_H
#include "mpifit/model.h"
#include "../core/core.h"

#define MF_LAYER_MAX_SLOTS 4
#define MF_LAYER_MAX_INPUTS 8 /* Concatenate and Add take up to 8 */
#define MF_NAME_MAX 64

/* A named weight tensor, reserved by build() and bound by mf_model_build(). */
typedef struct mf_slot {
    char name[32]; /* Keras weight name: "kernel", "bias", "gamma", "moving_mean" */
    mf_shape shape; /* Keras layout; ndim counts every axis (no batch) */
    mf_param_kind kind;
    size_t numel;
    size_t offset; /* floats into model params (TRAINABLE) or state (STATE) */
    float *data; /* bound view */
    float *grad; /* bound view into grads; NULL for STATE */
} mf_slot;

/* What one forward/backward call of a layer may use besides its tensors. */
typedef struct mf_exec {
    mf_mode mode; /* resolved per layer: a frozen BatchNorm sees MF_MODE_INFER */
    mf_rng *rng; /* Dropout's mask source; NULL in inference */
    float *ws; /* scratch of at least ops->workspace(l, N) floats, shared */
    size_t ws_floats; /* its actual size (may exceed what this layer asked for) */
    int param_grads; /* 0: the layer is frozen, skip parameter gradients */
    /* Synchronized BatchNorm: sums n doubles over every process in place, or
     * NULL (per-process statistics). The layer never learns who "every
     * process" is: the model hands in what mf_model_set_stat_reduce gave it. */
    mf_stat_reduce_fn stat_sum;
    void *stat_user;
    /* Deterministic mode: BatchNorm hands its batch statistics here instead
     * of updating the moving ones (mf_model_set_bn_record), or NULL. */
    mf_bn_record_fn bn_record;
    void *bn_record_user;
    int din_first[MF_LAYER_MAX_INPUTS]; /* 1: write din[i] (=), 0: add to it (+=) */
    /* Fusions the memory plan chose (each only for kinds whose ops allow it):
     *   fuse_relu: the ReLU that follows is done here (ops->fuses_relu): forward
     *     writes min(max(y, 0), relu_max) to `out`; backward gets the ReLU's
     *     output gradient as dout and passes it where 0 < y < relu_max (the
     *     layer recomputes y from its input: it does not read `out`);
     *   pad_top, pad_left: a ZeroPadding2D in front was folded in
     *     (ops->folds_pad): the input is the unpadded tensor and this much more
     *     padding comes before it (bottom/right padding is implied by the
     *     output size); backward writes the unpadded input's gradient. */
    int fuse_relu;
    float relu_max; /* FLT_MAX: unbounded */
    int pad_top, pad_left;
    /*   fold_w, fold_b: an inference-mode BatchNorm that follows was folded in
     *     (ops->folds_bn): use fold_w instead of the kernel (same layout, each
     *     output channel scaled) and add fold_b (one per output channel)
     *     instead of the bias; NULL otherwise. */
    const float *fold_w, *fold_b;
} mf_exec;

/* What a kind's backward reads besides dout, so that the memory plan keeps
 * exactly those activations alive until then. 0 (not set) means all of them:
 * the safe default for a new kind. */
#define MF_READS_IN0 1u /* input k is bit k (MF_READS_IN0 << k), k < MF_LAYER_MAX_INPUTS */
#define MF_READS_IN1 2u
#define MF_READS_ALL_IN 0xFFu
#define MF_READS_OUT 0x100u
#define MF_READS_NONE 0x200u /* shapes only (and what the layer keeps itself) */

typedef struct mf_layer_ops {
    const char *kind; /* Keras class name */
    const char *default_name; /* Keras' automatic name stem, e.g. "conv2d" */
    int n_in; /* inputs taken: 1, or 2 for Add; 0: 2..MF_LAYER_MAX_INPUTS (Concatenate) */
    int infer_when_frozen; /* BatchNorm: frozen => inference mode (Keras >= 2.1.3) */
    unsigned bwd_reads; /* MF_READS_* mask; 0 = every input and the output */
    int fuses_relu; /* may take mf_exec.fuse_relu (BatchNorm) */
    int folds_pad; /* may take mf_exec.pad_top/pad_left (DepthwiseConv2D) */
    int folds_bn; /* may take mf_exec.fold_w/fold_b and fuse_relu (convolutions) */
    /* Elementwise and alias-safe: out may be the memory of an input in
     * forward, and an input gradient the memory of dout in backward (no
     * restrict pointers; each element read before it is written). */
    int inplace;
    /* in_shape[] is set (batch 0); compute out_shape, validate, reserve slots. */
    mf_status (*build)(mf_layer *l);
    /* Fill TRAINABLE and STATE slots with Keras' default initial values. Optional. */
    void (*init)(mf_layer *l, mf_rng *rng);
    /* Scratch floats needed for a batch of N. Optional (0). */
    size_t (*workspace)(const mf_layer *l, int N);
    void (*forward)(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out);
    /* din[i] == NULL: that input needs no gradient. Accumulates into din and grads. */
    void (*backward)(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                     const mf_tensor *dout, mf_tensor *const *din);
    /* Fill the kind's Keras arguments into a (zeroed, kind set). Optional:
     * kinds without arguments (Add, Flatten, ...) leave it out. */
    void (*args)(const mf_layer *l, mf_layer_args *a);
    /* Free what the kind allocated itself (not the struct). Optional. */
    void (*destroy)(mf_layer *l);
} mf_layer_ops;

struct mf_layer {
    const mf_layer_ops *ops;
    char name[MF_NAME_MAX]; /* "" until the model names it */
    int trainable;
    int n_in;
    mf_shape in_shape[MF_LAYER_MAX_INPUTS]; /* batch 0 */
    mf_shape out_shape; /* batch 0 */
    int n_slots;
    mf_slot slot[MF_LAYER_MAX_SLOTS];
    /* initializers asked for by weight name (mf_layer_set_initializer), applied
     * by mf_model_build after ops->init */
    int n_init_req;
    struct {
        char name[32];
        int init; /* mf_initializer */
    } init_req[MF_LAYER_MAX_SLOTS];
};

/* Allocate a zeroed kind struct of `size` bytes with its common header set.
 * `name` may be NULL (the model assigns Keras' default). Returns NULL with the
 * error set if the name is too long. */
mf_layer *mf_layer_alloc(const mf_layer_ops *ops, size_t size, const char *name);
/* Reserve a named weight; returns its slot index. Called from build(). */
int mf_layer_reserve(mf_layer *l, const char *name, mf_shape shape, mf_param_kind kind);

/* A BatchNormalization in inference mode is y = x * scale + shift per
 * channel: fill scale and shift (C each, either may be NULL) and return C, or
 * return 0 if l is not one. */
int mf_batchnorm_affine(const mf_layer *l, float *scale, float *shift);
/* The clamp of a ReLU layer (FLT_MAX when unbounded), or -1 if l is not one. */
float mf_relu_clamp(const mf_layer *l);
/* The pads ((top, bottom), (left, right)) of a ZeroPadding2D into p[4]; 0 if l
 * is not one. */
int mf_zero_pad2d_pads(const mf_layer *l, int p[4]);

/* Activations (activation.c), for the Activation layer and the layers that
 * apply one after their bias. y = act(x), (rows, C), C the last axis (softmax's);
 * y may be x. */
void mf_act_forward(float *y, const float *x, size_t rows, int C, mf_activation a);
/* dx (= when first, else +=) dy * act'; y the output, x the input (read only
 * when mf_act_reads_input(a): swish). dx may be dy. */
void mf_act_backward(float *dx, const float *x, const float *y, const float *dy, size_t rows, int C, mf_activation a,
                     int first);
int mf_act_reads_input(mf_activation a);
/* Validate the Keras arguments shared by the convolutions (conv2d.c); filters
 * only when need_filters. */
mf_status mf_conv_options_check(const char *kind, const mf_conv_options *o, int need_filters);
/* o as a layer's Keras arguments (filters 0 for DepthwiseConv2D). */
void mf_conv_options_args(const mf_conv_options *o, mf_layer_args *a);
int mf_activation_valid(int a); /* a names an mf_activation */

/* 1 if l is trainable and has trainable weights (backward must reach it). */
int mf_layer_has_trainable(const mf_layer *l);
/* The slot named `name` ("kernel", "bias", ...), or NULL. */
const mf_slot *mf_layer_slot(const mf_layer *l, const char *name);

/* The input-gradient rule (see the top of this file) for the layers whose
 * gradient is a copy or a product: dx (n) = g * s when first, dx += g * s
 * otherwise, s elementwise or NULL (1). dx == g with first is a no-op (the
 * plan gave dx the memory of g). Never reads dx when first: the arena is not
 * zeroed. dx == g: the plan gave dx the memory of g (then s is NULL). */
void mf_din_put(float *dx, const float *g, const float *s, size_t n, int first);
/* The same rule for a gradient computed element by element inside a kernel
 * (ReLU's mask, BatchNorm's formula): dst[i] = value, or dst[i] += value,
 * i from 0 to n. `first` picks one of two vectorised loops, never a factor
 * (dst is not initialised when first, and 0 * NaN is NaN). Products apply the
 * rule as beta = first ? 0 : 1; scatters (col2im, the depthwise transpose)
 * clear their image first, then add. */
#define MF_DIN_LOOP(first, i, n, dst, value)                                                 \
    do {                                                                                     \
        if (first) {                                                                         \
            _Pragma("omp simd") for (size_t i = 0; i < (size_t)(n); i++)(dst)[i] = (value);  \
        } else {                                                                             \
            _Pragma("omp simd") for (size_t i = 0; i < (size_t)(n); i++)(dst)[i] += (value); \
        }                                                                                    \
    } while (0)

/* db (C) += the column sums of dy (rows, C). The batch's sum is formed
 * first and added once, so gradients accumulated over micro-batches (or two
 * backward passes) add whole sums: g + g is exactly 2g. */
void mf_bias_grad(float *db, const float *dy, size_t rows, int C);

/* Keras glorot_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
void mf_init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, mf_rng *rng);
void mf_init_const(float *w, size_t n, float v);
/* initializers.c: every requested initializer names a weight of l (build
 * fails otherwise, naming the layer and its weights); fill them from rng. */
mf_status mf_layer_check_initializers(const mf_layer *l);
void mf_layer_apply_initializers(mf_layer *l, mf_rng *rng);
/* w (n floats of a weight of Keras shape `shape`) = init's values (tests). */
void mf_init_fill(float *w, size_t n, const mf_shape *shape, mf_initializer init, mf_rng *rng);

#endif
