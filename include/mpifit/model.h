/* mpifit/model.h: a graph of named layers with one parameter buffer.
 *
 * Build a model by adding layers in topological order: each mf_model_add*
 * names the node(s) it reads from and returns its own node id (the input is
 * node 0). Chains and residual Adds are what MobileNetV2 needs.
 *
 * mf_model_build() computes every shape, then lays out three buffers:
 *   params: every trainable-kind weight (kernels, biases, gamma, beta), contiguous,
 *           MF_ALIGN-aligned, in layer order;
 *   grads:  the same layout as params (one allreduce covers every gradient);
 *   state:  non-trainable values (BatchNorm moving mean and variance).
 * Layers hold views into them; nothing else owns weights. */
#ifndef MPIFIT_MODEL_H
#define MPIFIT_MODEL_H
#include <stdint.h>
#include <stdio.h>
#include "mpifit/status.h"
#include "mpifit/tensor.h"
#include "mpifit/layers.h"

typedef struct mf_model mf_model;
typedef struct mf_comm mf_comm; /* mpifit/comm.h */
/* Sums buf[0..n) over every process in place (see mf_model_set_stat_reduce). */
typedef mf_status (*mf_stat_reduce_fn)(void *user, double *buf, int n);

typedef enum mf_param_kind {
    MF_PARAM_TRAINABLE = 0, /* in params/grads; updated unless the layer is frozen */
    MF_PARAM_STATE = 1 /* in state; no gradient (BN moving statistics) */
} mf_param_kind;

/* One named weight tensor of a layer, as listed by mf_model_param(). */
typedef struct mf_param_info {
    const char *layer; /* layer name, e.g. "block_1_expand" */
    const char *name; /* Keras weight name, e.g. "kernel", "moving_mean" */
    mf_shape shape; /* Keras layout */
    mf_param_kind kind;
    size_t offset; /* in floats, into params (TRAINABLE) or state (STATE) */
    size_t numel;
    int trainable; /* TRAINABLE kind and the layer is not frozen */
} mf_param_info;

/* Create an empty model. Returns NULL only on a NULL name. */
MF_API mf_model *mf_model_create(const char *name);
/* Free the model, its layers and all its buffers. NULL is a no-op. */
MF_API void mf_model_free(mf_model *m);
/* Declare the input: shape with batch 0, e.g. mf_shape4(0, 224, 224, 3). Returns
 * node id 0, or -1 (error set) if called twice or after build. */
MF_API int mf_model_input(mf_model *m, mf_shape shape);
/* Append a layer reading node `in`; the model takes ownership of l, also on
 * failure. The layer's output shape is inferred now. Returns the new node id,
 * or -1 with mf_last_error() set (unknown node, duplicate layer name, shapes
 * that do not fit, naming the layer, model already built). After a failed add
 * mf_model_build refuses the model, so an unchecked -1 is never silent.
 * l may be NULL (a failed constructor): then this fails with its message. */
MF_API int mf_model_add(mf_model *m, mf_layer *l, int in);
/* Append a two-input layer (Add) reading nodes a and b. */
MF_API int mf_model_add2(mf_model *m, mf_layer *l, int a, int b);
/* Append a layer reading the n nodes in[0..n) (Concatenate, Add: 2 to 8; a
 * one-input layer with n = 1). Same ownership and errors as mf_model_add. */
MF_API int mf_model_add_n(mf_model *m, mf_layer *l, const int *in, int n);
/* Allocate params/grads/state, bind every layer's weights as views into them,
 * and initialise every weight with Keras' default initializers drawn from
 * `seed`. Fails if any earlier add failed. */
MF_API mf_status mf_model_build(mf_model *m, uint64_t seed);

MF_API const char *mf_model_name(const mf_model *m);
/* The input's name in summaries (Keras' InputLayer name; "input_1" unless
 * set, as Keras 2 names it). Truncated to 63 bytes. */
MF_API void mf_model_set_input_name(mf_model *m, const char *name);
MF_API const char *mf_model_input_name(const mf_model *m);
MF_API int mf_model_is_built(const mf_model *m); /* 1 after mf_model_build */
MF_API int mf_model_num_layers(const mf_model *m);
MF_API mf_layer *mf_model_layer(const mf_model *m, int i); /* i in [0, num_layers) */
/* The graph: layer i's inputs into in[] (at most 8), each a layer index, or
 * -1 for the model's input; returns how many. */
MF_API int mf_model_layer_inputs(const mf_model *m, int i, int in[8]);
MF_API mf_layer *mf_model_find_layer(const mf_model *m, const char *name); /* or NULL */
MF_API mf_shape mf_model_input_shape(const mf_model *m);
MF_API mf_shape mf_model_output_shape(const mf_model *m);

/* Buffers (valid after build, owned by the model). */
MF_API float *mf_model_params(mf_model *m);
MF_API float *mf_model_grads(mf_model *m);
MF_API float *mf_model_state(mf_model *m);
MF_API size_t mf_model_num_params(const mf_model *m); /* floats in params (= grads) */
MF_API size_t mf_model_num_state(const mf_model *m); /* floats in state */
/* Keras' counts: trainable = trainable-kind weights of unfrozen layers;
 * non-trainable = state + weights of frozen layers. */
MF_API size_t mf_model_count_trainable(const mf_model *m);
MF_API size_t mf_model_count_non_trainable(const mf_model *m);
MF_API int mf_model_num_param_tensors(const mf_model *m);
MF_API mf_param_info mf_model_param(const mf_model *m, int i);

/* Run the graph on x: (N, input shape...) floats. Activations live in one arena
 * sized for the largest N seen so far. `rng` feeds Dropout (may be NULL in
 * inference mode). Returns a view of the output, valid until the next forward. */
MF_API mf_tensor mf_model_forward(mf_model *m, const float *x, int N, mf_mode mode, mf_rng *rng);
/* Set every parameter gradient to 0 (call once per optimizer step). */
MF_API void mf_model_zero_grad(mf_model *m);
/* Call hook(user, i) right after layer i's backward during mf_model_backward:
 * its parameter gradients are final then (data parallelism starts reducing
 * them while backward goes on); hook(user, -1) when a backward pass begins,
 * before any gradient is written. NULL removes the hook. */
MF_API void mf_model_set_backward_hook(mf_model *m, void (*hook)(void *user, int layer), void *user);
/* Synchronized BatchNorm: in training mode every BatchNormalization layer sums
 * its batch statistics (and the two gradient terms of its backward) over the
 * ranks of comm, so the ranks normalise with the global batch's statistics.
 * NULL (the default) keeps per-rank statistics, as PyTorch DDP does. */
MF_API void mf_model_set_sync_batchnorm(mf_model *m, mf_comm *comm);
/* The general form: fn(user, buf, n) must replace buf[0..n) by its sum over
 * every process taking part, in place, the same on all of them, and return
 * MF_STATUS_OK. Layers that normalise over the global batch (synchronized
 * BatchNorm) call it; NULL turns it off. mf_model_set_sync_batchnorm installs
 * an MPI allreduce over comm here. */
MF_API void mf_model_set_stat_reduce(mf_model *m, mf_stat_reduce_fn fn, void *user);
/* BatchNorm in training mode hands its batch statistics (mean, unbiased
 * variance: C floats each) to fn instead of updating its moving statistics;
 * NULL restores the update. Deterministic mode (src/train/deterministic.c)
 * records every chunk's and updates once per step with
 * mf_batchnorm_update_moving. */
typedef void (*mf_bn_record_fn)(void *user, mf_layer *bn, const float *mean, const float *var, int C);
MF_API void mf_model_set_bn_record(mf_model *m, mf_bn_record_fn fn, void *user);

/* What forward passes keep for a backward pass that follows. By default a
 * forward pass in MF_MODE_TRAIN keeps what the weight gradients need, and one
 * in MF_MODE_INFER keeps nothing (evaluation and prediction allocate no
 * gradients and hold one or two activations at a time). Flags:
 *   MF_KEEP_INPUT_GRAD:     mf_model_backward will be asked for dx;
 *   MF_KEEP_INFER_BACKWARD: mf_model_backward may follow an inference-mode
 *                           forward (e.g. gradients through frozen BatchNorm);
 *   MF_KEEP_ALL:            no memory plan: see below.
 * Backward after a forward that did not keep what it needs is a fatal error. */
#define MF_KEEP_INPUT_GRAD 1u
#define MF_KEEP_INFER_BACKWARD 2u
/* Debugging and tests: every tensor kept for the whole pass, nothing fused,
 * nothing shared (the reference the plan must agree with bit for bit). */
#define MF_KEEP_ALL 4u
MF_API void mf_model_set_backward_keep(mf_model *m, unsigned flags);
/* Bytes of the activation arena the current memory plan uses (activations and
 * their gradients, planned by liveness for the last forward's batch and mode). */
MF_API size_t mf_model_arena_bytes(const mf_model *m);

/* Profiling: time every layer's forward and backward from now on (on = 1),
 * and print the totals by layer kind, largest first. */
MF_API void mf_model_set_profiling(mf_model *m, int on);
MF_API void mf_model_profile_report(const mf_model *m, FILE *f);

/* Set the trainable flag of every layer from the first one up to and including
 * the layer named `last` (e.g. "out_relu": freeze a pretrained MobileNetV2 base
 * under a new head). Before or after build. MF_STATUS_INVALID if no such layer. */
MF_API mf_status mf_model_set_trainable_upto(mf_model *m, const char *last, int trainable);
/* Fine-tuning: freeze every layer before the one named `first` (e.g.
 * "block_13_expand") and make it and every later layer trainable, except
 * BatchNormalization layers, which stay frozen (inference mode, moving
 * statistics kept) unless train_bn, as Keras' transfer-learning guide
 * recommends. A model being trained notices at its next step (see
 * mf_fit_sync_trainable). MF_STATUS_INVALID if no such layer. */
MF_API mf_status mf_model_set_trainable_from(mf_model *m, const char *first, int train_bn);
/* A hash of every layer's trainable flag: what data parallelism and the memory
 * plan derive from trainability is re-planned when it changes. */
MF_API uint64_t mf_model_trainable_signature(const mf_model *m);

/* Keras' model.summary(): one row per layer (name, type, output shape,
 * parameters, inputs), then total / trainable / non-trainable counts. */
MF_API void mf_model_summary(const mf_model *m, FILE *f);

/* ---- model zoo (Keras' layer structure, names and parameter counts) ------- */

/* Append MobileNetV2's convolutional base (Conv1 ... out_relu) after node x,
 * exactly as keras.applications.MobileNetV2(alpha, include_top=False) builds it:
 * the same layers, names (Conv1, bn_Conv1, expanded_conv_depthwise,
 * block_1_expand, ..., Conv_1, Conv_1_bn, out_relu), channel rounding,
 * BatchNorm momentum 0.999 and epsilon 1e-3, and correct_pad before every
 * stride-2 depthwise conv. alpha in {0.35, 0.5, 0.75, 1.0, 1.3, 1.4}. Returns
 * the output node, or -1 with mf_last_error() set. */
MF_API int mf_mobilenet_v2_base(mf_model *m, int x, float alpha);
/* A whole model: input (input_size, input_size, 3), input_size >= 32; with
 * include_top, GlobalAveragePooling2D + Dense(classes) named "predictions"
 * (logits: the softmax is fused into the loss). Built, weights initialised
 * from seed. Model name as Keras': "mobilenetv2_1.00_224". */
MF_API mf_status mf_mobilenet_v2(mf_model **out, float alpha, int input_size, int include_top, int classes,
                                 uint64_t seed);
/* The transfer-learning classifier: MobileNetV2 base -> GlobalAveragePooling2D
 * -> Dropout(dropout) -> Dense(classes), the head named as Keras names it by
 * default ("global_average_pooling2d", "dropout", "dense"). Built. */
MF_API mf_status mf_mobilenet_v2_classifier(mf_model **out, float alpha, int input_size, int classes, float dropout,
                                            uint64_t seed);
/* A small CNN for fast tests and experiments: three Conv2D(3x3) + BatchNorm +
 * ReLU stages (width, 2*width, 4*width filters, the last two stride 2), then
 * GlobalAveragePooling2D -> Dropout(dropout) -> Dense(classes). Built. */
MF_API mf_status mf_small_cnn(mf_model **out, int input_size, int classes, int width, float dropout, uint64_t seed);

/* Back-propagate dout (the output's shape, from the last forward, which must
 * have been in training mode, see mf_model_set_backward_keep) through the
 * graph, ACCUMULATING (+=) into the parameter gradients. If dx is not NULL, the
 * input gradient is written there (needs MF_KEEP_INPUT_GRAD). Once per forward
 * pass: the memory plan reuses an activation's memory once backward has read
 * it. */
MF_API void mf_model_backward(mf_model *m, const float *dout, float *dx);
#endif
