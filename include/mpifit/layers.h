/* mpifit/layers.h: layer constructors (Keras semantics and names) and the fused
 * softmax + sparse categorical cross-entropy loss.
 *
 * A layer is an opaque handle. It is created here, then handed to a model with
 * mf_model_add(), which owns it from then on. Shapes are NHWC. Weight layouts are
 * Keras': Conv2D kernel (KH, KW, Cin, Cout), DepthwiseConv2D kernel (KH, KW, C, 1),
 * Dense kernel (in, out), BatchNormalization gamma, beta, moving_mean,
 * moving_variance (C each).
 *
 * Constructors return NULL on a bad argument and leave the reason in mf_last_error().
 * A NULL name lets the model pick Keras' default ("conv2d", "conv2d_1", ...). */
#ifndef MPIFIT_LAYERS_H
#define MPIFIT_LAYERS_H
#include <stdint.h>
#include "mpifit/tensor.h"
#include "mpifit/rng.h"
#include "mpifit/status.h"

typedef enum mf_padding { MF_PADDING_VALID = 0, MF_PADDING_SAME = 1 } mf_padding;

/* Training mode: BatchNorm uses batch statistics and updates its moving
 * averages, Dropout drops. Inference mode: moving statistics, no dropout. */
typedef enum mf_mode { MF_MODE_INFER = 0, MF_MODE_TRAIN = 1 } mf_mode;

typedef struct mf_layer mf_layer;

/* Keras activation functions (Activation layer, and the `activation` argument
 * of Conv2D, SeparableConv2D and Dense, applied after the bias). hard_sigmoid is
 * Keras 2's clip(0.2 x + 0.5, 0, 1); softmax is over the last axis. */
typedef enum mf_activation {
    MF_ACT_LINEAR = 0,
    MF_ACT_RELU,
    MF_ACT_RELU6,
    MF_ACT_SIGMOID,
    MF_ACT_TANH,
    MF_ACT_SOFTMAX,
    MF_ACT_SWISH,
    MF_ACT_HARD_SIGMOID
} mf_activation;

/* Map a Keras activation name ("relu", "relu6", "sigmoid", "tanh", "softmax",
 * "linear", "swish", "silu", "hard_sigmoid") to *out. MF_STATUS_INVALID with the
 * valid names in mf_last_error() otherwise (*out untouched). */
MF_API mf_status mf_activation_parse(const char *keras_name, mf_activation *out);
/* Keras' name of a (e.g. "relu6"), the inverse of mf_activation_parse. */
MF_API const char *mf_activation_name(mf_activation a);
/* Keras Activation layer (kind "Activation", default name "activation"):
 * y = act(x) elementwise, softmax over the last axis. */
MF_API mf_layer *mf_activation_layer(const char *name, mf_activation act);

/* Conv2D: `filters` outputs, square kernel 1 or 3 (any odd size works), stride 1 or 2.
 * Padding "same" follows TensorFlow (extra pad at bottom/right when odd). */
MF_API mf_layer *mf_conv2d(const char *name, int filters, int kernel, int stride, mf_padding padding, int use_bias);
/* Keras' convolution arguments. kernel 1..7 on each axis, strides >= 1,
 * dilation_rate >= 1 (strides must be 1 when dilated, as in Keras), padding,
 * use_bias, the activation applied after the bias. filters: Conv2D and
 * SeparableConv2D outputs; depth_multiplier: DepthwiseConv2D and
 * SeparableConv2D (filters per input channel, 1..4096). */
typedef struct mf_conv_options {
    int filters;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    mf_padding padding;
    int use_bias;
    mf_activation activation;
    int depth_multiplier;
} mf_conv_options;
/* Keras' defaults: 3x3 kernel, strides 1, dilation 1, 'valid', bias, linear,
 * depth_multiplier 1; filters 0 (must be set for Conv2D). */
MF_API mf_conv_options mf_conv_options_default(void);
/* Conv2D with every option above. Square kernels with equal strides, no
 * dilation and no activation run the same code as mf_conv2d (bit for bit);
 * the rest a general im2col path. NULL with the reason on a bad option. */
MF_API mf_layer *mf_conv2d_ex(const char *name, const mf_conv_options *o);
/* DepthwiseConv2D with depth multiplier 1: one kernel x kernel filter per channel. */
MF_API mf_layer *mf_depthwise_conv2d(const char *name, int kernel, int stride, mf_padding padding, int use_bias);
/* DepthwiseConv2D with every option of mf_conv_options but filters:
 * depth_multiplier M filters per channel (output channel c*M + m, kernel
 * (KH,KW,C,M)), kernels 1..7 per axis, strides, dilation_rate, the activation
 * fused. Without an activation it runs mf_depthwise_conv2d's kernels and folds
 * a following BatchNorm as it does. NULL with the reason on a bad option. */
MF_API mf_layer *mf_depthwise_conv2d_ex(const char *name, const mf_conv_options *o);
/* SeparableConv2D: the depthwise convolution of mf_depthwise_conv2d_ex (no
 * bias), a 1x1 convolution to o->filters, the bias, the activation. Weights
 * depthwise_kernel (KH,KW,C,M), pointwise_kernel (1,1,C*M,F), bias (F). */
MF_API mf_layer *mf_separable_conv2d(const char *name, const mf_conv_options *o);
/* BatchNormalization over the channel axis (Keras defaults: momentum 0.99, epsilon 1e-3). */
MF_API mf_layer *mf_batchnorm(const char *name, float momentum, float epsilon);
/* BatchNormalization with Keras' center and scale flags: center = 0 has no
 * beta weight (shift 0), scale = 0 no gamma weight (scale 1); Keras then omits
 * them from the weights file too. */
MF_API mf_layer *mf_batchnorm_ex(const char *name, float momentum, float epsilon, int center, int scale);
/* Change a BatchNormalization layer's momentum (e.g. 0.9 to let moving
 * statistics settle within tens of steps when training from scratch; Keras'
 * MobileNetV2 uses 0.999). MF_STATUS_INVALID if l is not a BatchNormalization
 * or momentum is outside [0, 1]. */
MF_API mf_status mf_batchnorm_set_momentum(mf_layer *l, float momentum);
/* One moving-statistics update of a BatchNormalization from batch statistics
 * (C floats each: the mean and the unbiased variance): moving = momentum *
 * moving + (1 - momentum) * batch, as its training forward does. */
MF_API void mf_batchnorm_update_moving(mf_layer *l, const float *mean, const float *var);
/* ReLU, clipped at max_value when max_value > 0 (ReLU6 is max_value = 6). */
MF_API mf_layer *mf_relu(const char *name, float max_value);
/* Add: element-wise sum of 2 to 8 inputs of the same shape (residual connections;
 * mf_model_add2, or mf_model_add_n for more). */
MF_API mf_layer *mf_add(const char *name);
/* ZeroPadding2D with separate top, bottom, left, right pads (Keras ((t,b),(l,r))). */
MF_API mf_layer *mf_zero_pad2d(const char *name, int top, int bottom, int left, int right);
/* GlobalAveragePooling2D: (N,H,W,C) -> (N,C). */
MF_API mf_layer *mf_global_avg_pool2d(const char *name);
/* Dropout: inverted (kept values scaled by 1/(1-rate)), masks drawn from the
 * rng handed to the forward pass; identity in inference mode. 0 <= rate < 1. */
MF_API mf_layer *mf_dropout(const char *name, float rate);
/* Dense: (N, in) -> (N, units), kernel (in, units). */
MF_API mf_layer *mf_dense(const char *name, int units, int use_bias);
/* Dense with Keras' activation argument: y = act(x W + b) (softmax over the
 * units: probabilities out; train such a model with a loss on probabilities,
 * the fused softmax cross-entropy expects logits). */
MF_API mf_layer *mf_dense_ex(const char *name, int units, int use_bias, mf_activation activation);

/* MaxPooling2D(pool_size (pool_h, pool_w), strides, padding): the maximum of
 * each window; 'same' as TensorFlow (padded cells never win). Backward routes
 * each output's gradient to the FIRST maximum of its window in scan order (row
 * by row, left to right): ties (equal values) give it to one cell, as
 * TensorFlow does. */
MF_API mf_layer *mf_max_pool2d(const char *name, int pool_h, int pool_w, int stride_h, int stride_w,
                               mf_padding padding);
/* AveragePooling2D: the mean of each window; with 'same' padding a window that
 * overhangs the image averages over its cells inside the image only, as
 * TensorFlow does. */
MF_API mf_layer *mf_avg_pool2d(const char *name, int pool_h, int pool_w, int stride_h, int stride_w,
                               mf_padding padding);
/* GlobalMaxPooling2D: (N,H,W,C) -> (N,C), the gradient to the first maximum. */
MF_API mf_layer *mf_global_max_pool2d(const char *name);
/* Flatten: (N, H, W, C) -> (N, H*W*C) in NHWC order (Keras channels_last). */
MF_API mf_layer *mf_flatten(const char *name);
/* Rescaling: y = x * scale + offset (no weights). */
MF_API mf_layer *mf_rescaling(const char *name, float scale, float offset);
/* Concatenate on the last (channel) axis of 2 to 8 inputs (mf_model_add_n):
 * every other axis must agree. */
MF_API mf_layer *mf_concatenate(const char *name);

/* Keras weight initializers (VarianceScaling family, constants, random). */
typedef enum mf_initializer {
    MF_INIT_DEFAULT = 0, /* the layer's Keras default (glorot_uniform kernels, zero biases, ...) */
    MF_INIT_GLOROT_UNIFORM,
    MF_INIT_GLOROT_NORMAL,
    MF_INIT_HE_NORMAL,
    MF_INIT_HE_UNIFORM,
    MF_INIT_LECUN_NORMAL,
    MF_INIT_LECUN_UNIFORM,
    MF_INIT_ZEROS,
    MF_INIT_ONES,
    MF_INIT_RANDOM_NORMAL, /* N(0, 0.05) */
    MF_INIT_RANDOM_UNIFORM, /* U(-0.05, 0.05) */
    MF_INIT_TRUNCATED_NORMAL /* N(0, 0.05) truncated at 2 stddev */
} mf_initializer;
/* Map a Keras initializer class name (Keras 2 and 3: "GlorotUniform", "HeNormal",
 * "Zeros", ...) or its snake_case alias ("glorot_uniform") to *out.
 * MF_STATUS_INVALID listing the valid names otherwise. */
MF_API mf_status mf_initializer_parse(const char *keras_class_name, mf_initializer *out);
/* Initialise the weight `weight_name` ("kernel", "bias", "gamma", "beta",
 * "moving_mean", "depthwise_kernel", ...) of l with `init` at mf_model_build,
 * with Keras' formulas (fan_in/fan_out as Keras computes them for the weight's
 * shape). Before the layer is added or after; mf_model_build fails, naming the
 * layer and its weights, if l has no such weight. MF_STATUS_INVALID on a bad
 * argument. */
MF_API mf_status mf_layer_set_initializer(mf_layer *l, const char *weight_name, mf_initializer init);

/* Free a layer that was never added to a model. mf_layer_free(NULL) is a no-op. */
MF_API void mf_layer_free(mf_layer *l);
MF_API const char *mf_layer_name(const mf_layer *l);
/* Keras class name: "Conv2D", "DepthwiseConv2D", "BatchNormalization", ... */
MF_API const char *mf_layer_kind(const mf_layer *l);
MF_API mf_shape mf_layer_output_shape(const mf_layer *l);

/* A layer's Keras constructor arguments, as one plain struct for every kind
 * (what writing a Keras model description needs). Fields a kind does not
 * have stay 0; kind is mf_layer_kind(l). */
typedef struct mf_layer_args {
    const char *kind;
    int filters; /* Conv2D, SeparableConv2D */
    int units; /* Dense */
    int kernel_h, kernel_w; /* Conv2D, DepthwiseConv2D, SeparableConv2D */
    int pool_h, pool_w; /* MaxPooling2D, AveragePooling2D */
    int stride_h, stride_w; /* convolutions and pooling */
    int dilation_h, dilation_w; /* convolutions */
    mf_padding padding; /* convolutions and pooling */
    int use_bias; /* convolutions, Dense */
    mf_activation activation; /* convolutions, Dense, Activation */
    float momentum, epsilon; /* BatchNormalization */
    int center, scale; /* BatchNormalization */
    float max_value; /* ReLU; <= 0: unbounded */
    int pad[4]; /* ZeroPadding2D: top, bottom, left, right */
    float rate; /* Dropout */
    float rescale, offset; /* Rescaling: scale, offset */
    int depth_multiplier; /* DepthwiseConv2D, SeparableConv2D */
} mf_layer_args;
MF_API void mf_layer_keras_args(const mf_layer *l, mf_layer_args *out);
/* Trainable flag (default 1). A frozen layer's parameters get no update, and a
 * frozen BatchNorm runs in inference mode, as in Keras >= 2.1.3. */
MF_API void mf_layer_set_trainable(mf_layer *l, int trainable);
MF_API int mf_layer_trainable(const mf_layer *l);

/* probs (N, C) = softmax of each row of logits (N, C), stably (as
 * exp(z - logsumexp(z))); the probabilities mf_softmax_xent_forward and
 * mf_predict give. */
MF_API void mf_softmax(float *probs, const float *logits, int N, int C);

/* Softmax fused with sparse categorical cross-entropy from logits (Keras
 * SparseCategoricalCrossentropy(from_logits=True), reduction "sum over batch
 * size"): loss = (1/N) * sum_i w_i * (logsumexp(z_i) - z_i[y_i]), w_i = 1 when
 * weights is NULL. Stable for any logit magnitude.
 *   logits: (N, C)  labels: (N) in [0, C)  weights: (N) or NULL  probs: (N, C) out, or NULL
 * Returns the loss in double. A label outside [0, C) is a bug (MF_ASSERT). */
MF_API double mf_softmax_xent_forward(float *probs, const float *logits, const int32_t *labels, const float *weights,
                                      int N, int C);
/* dlogits = dloss * w_i * (softmax(z_i) - onehot(y_i)) / N, overwriting dlogits.
 *   probs: (N, C) from the forward pass  dlogits: (N, C) out */
MF_API void mf_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, const float *weights,
                                     int N, int C, float dloss);
#endif
