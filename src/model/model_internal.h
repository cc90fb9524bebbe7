/* model_internal.h: the model struct, shared by model.c and summary.c. */
#ifndef MF_MODEL_INTERNAL_H
#define MF_MODEL_INTERNAL_H
#include "../layers/layer.h"
#include "plan.h"

typedef struct mf_model_node {
    mf_layer *layer; /* NULL for the input node 0 */
    int in[MF_LAYER_MAX_INPUTS];
    int n_in;
    mf_shape shape; /* output shape, batch 0 */
    mf_tensor act; /* view into the arena for the current batch (data NULL: not kept) */
    mf_tensor dact; /* its gradient, same shape (data NULL: not kept) */
} mf_model_node;

typedef struct mf_model_slot_ref {
    int node, slot;
} mf_model_slot_ref;

struct mf_model {
    char name[MF_NAME_MAX];
    char input_name[MF_NAME_MAX]; /* the InputLayer's name in summaries; "" = Keras 2's "input_1" */
    int built;
    char broken[512]; /* first failed add's message, "" if none */
    mf_model_node *nodes; /* n_nodes, node 0 = input */
    int n_nodes, cap_nodes;
    float *params, *grads; /* n_params each, same layout */
    float *state; /* n_state */
    size_t n_params, n_state;
    mf_model_slot_ref *infos; /* every slot in layer order */
    int n_infos;
    mf_plan plan; /* the last forward's memory plan (plan.h) */
    float *arena; /* arena_floats: every activation and activation gradient */
    size_t arena_floats;
    unsigned keep; /* MF_KEEP_* flags */
    float *fold; /* fold_floats: BatchNorm-folded convolution weights (plan.h) */
    size_t fold_floats;
    int ws_N; /* batch the workspace is sized for */
    float *ws; /* ws_floats shared scratch */
    size_t ws_floats;
    unsigned char *need_grad; /* n_nodes, scratch of backward */
    unsigned char *grad_written; /* n_nodes, scratch of backward: dact holds a first contribution */
    int last_N, last_mode;
    void (*bwd_hook)(void *user, int layer);
    void *bwd_hook_user;
    mf_stat_reduce_fn stat_sum; /* synchronized BatchNorm, or NULL */
    mf_bn_record_fn bn_record; /* deterministic mode's BatchNorm statistics, or NULL */
    void *bn_record_user;
    void *stat_user;
    int profile; /* time every layer's forward and backward */
    double *fwd_s, *bwd_s; /* n_nodes each, seconds summed */
    mf_rng *last_rng;
};
#endif
