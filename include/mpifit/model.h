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
#include "mpifit/status.h"
#include "mpifit/tensor.h"
#include "mpifit/layers.h"

typedef struct mf_model mf_model;

typedef enum mf_param_kind {
    MF_PARAM_TRAINABLE = 0,  /* in params/grads; updated unless the layer is frozen */
    MF_PARAM_STATE     = 1   /* in state; no gradient (BN moving statistics) */
} mf_param_kind;

/* One named weight tensor of a layer, as listed by mf_model_param(). */
typedef struct mf_param_info {
    const char   *layer;   /* layer name, e.g. "block_1_expand" */
    const char   *name;    /* Keras weight name, e.g. "kernel", "moving_mean" */
    mf_shape      shape;   /* Keras layout */
    mf_param_kind kind;
    size_t        offset;  /* in floats, into params (TRAINABLE) or state (STATE) */
    size_t        numel;
    int           trainable; /* TRAINABLE kind and the layer is not frozen */
} mf_param_info;

/* Create an empty model. Returns NULL only on a NULL name. */
MF_API mf_model *mf_model_create(const char *name);
/* Free the model, its layers and all its buffers. NULL is a no-op. */
MF_API void      mf_model_free(mf_model *m);
/* Declare the input: shape with batch 0, e.g. mf_shape4(0, 224, 224, 3). Returns
 * node id 0, or -1 (error set) if called twice or after build. */
MF_API int       mf_model_input(mf_model *m, mf_shape shape);
/* Append a layer reading node `in`; the model takes ownership of l, also on
 * failure. Returns the new node id, or -1 with mf_last_error() set (unknown node,
 * duplicate layer name, model already built). */
MF_API int       mf_model_add(mf_model *m, mf_layer *l, int in);
/* Append a two-input layer (Add) reading nodes a and b. */
MF_API int       mf_model_add2(mf_model *m, mf_layer *l, int a, int b);
/* Compute shapes, allocate params/grads/state and initialise every weight with
 * Keras' default initializers drawn from `seed`. Errors: MF_STATUS_SHAPE naming
 * the layer and the shapes that do not fit. */
MF_API mf_status mf_model_build(mf_model *m, uint64_t seed);

MF_API const char *mf_model_name(const mf_model *m);
MF_API int       mf_model_num_layers(const mf_model *m);
MF_API mf_layer *mf_model_layer(const mf_model *m, int i);       /* i in [0, num_layers) */
MF_API mf_layer *mf_model_find_layer(const mf_model *m, const char *name); /* or NULL */
MF_API mf_shape  mf_model_input_shape(const mf_model *m);
MF_API mf_shape  mf_model_output_shape(const mf_model *m);

/* Buffers (valid after build, owned by the model). */
MF_API float  *mf_model_params(mf_model *m);
MF_API float  *mf_model_grads(mf_model *m);
MF_API float  *mf_model_state(mf_model *m);
MF_API size_t  mf_model_num_params(const mf_model *m);  /* floats in params (= grads) */
MF_API size_t  mf_model_num_state(const mf_model *m);   /* floats in state */
/* Keras' counts: trainable = trainable-kind weights of unfrozen layers;
 * non-trainable = state + weights of frozen layers. */
MF_API size_t  mf_model_count_trainable(const mf_model *m);
MF_API size_t  mf_model_count_non_trainable(const mf_model *m);
MF_API int     mf_model_num_param_tensors(const mf_model *m);
MF_API mf_param_info mf_model_param(const mf_model *m, int i);

/* Run the graph on x: (N, input shape...) floats. Activations live in one arena
 * sized for the largest N seen so far. `rng` feeds Dropout (may be NULL in
 * inference mode). Returns a view of the output, valid until the next forward. */
MF_API mf_tensor mf_model_forward(mf_model *m, const float *x, int N, mf_mode mode, mf_rng *rng);
/* Set every parameter gradient to 0 (call once per optimizer step). */
MF_API void      mf_model_zero_grad(mf_model *m);
/* Back-propagate dout (the output's shape, from the last forward, which must
 * have been in training mode) through the graph, ACCUMULATING (+=) into the
 * parameter gradients. If dx is not NULL, the input gradient is written there. */
MF_API void      mf_model_backward(mf_model *m, const float *dout, float *dx);
#endif
