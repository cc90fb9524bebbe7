/* model.c: the layer graph, its one parameter/gradient/state buffer each, and
 * the forward and backward passes over it.
 *
 * Nodes are kept in insertion order, which is a topological order because a
 * layer may only read nodes added before it. Node 0 is the input. Every node
 * has a view into one arena that holds activations and their gradients as the
 * memory plan (plan.h) lays them out: a tensor lives only while something
 * will read it, and tensors that are never live together share memory. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "../layers/layer.h"
#include "model_internal.h"
#include "../core/trace.h"

mf_model *mf_model_create(const char *name)
{
    if (!name)
        return NULL;
    mf_model *m = mf_alloc(sizeof *m);
    mf_strlcpy(m->name, name, sizeof m->name);
    return m;
}

void mf_model_set_input_name(mf_model *m, const char *name) { mf_strlcpy(m->input_name, name, sizeof m->input_name); }

const char *mf_model_input_name(const mf_model *m) { return m->input_name[0] ? m->input_name : "input_1"; }

void mf_model_free(mf_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_nodes; i++)
        mf_layer_free(m->nodes[i].layer);
    mf_free(m->nodes);
    mf_free(m->params);
    mf_free(m->grads);
    mf_free(m->state);
    mf_free(m->arena);
    mf_free(m->fold);
    mf_plan_free(&m->plan);
    mf_free(m->ws);
    mf_free(m->infos);
    mf_free(m->need_grad);
    mf_free(m->grad_written);
    mf_free(m->fwd_s);
    mf_free(m->bwd_s);
    mf_free(m);
}

static mf_model_node *push_node(mf_model *m)
{
    m->nodes = mf_grow(m->nodes, m->n_nodes, &m->cap_nodes, 64, sizeof *m->nodes);
    mf_model_node *nd = &m->nodes[m->n_nodes++];
    memset(nd, 0, sizeof *nd);
    return nd;
}

int mf_model_input(mf_model *m, mf_shape shape)
{
    if (m->built || m->n_nodes > 0) {
        mf_fail(MF_STATUS_INVALID, "model '%s': the input is declared once, before any layer", m->name);
        return -1;
    }
    if (shape.ndim < 2 || shape.d[0] != 0) {
        mf_fail(MF_STATUS_SHAPE, "model '%s': input shape must have batch 0 (any) and at least one more axis", m->name);
        return -1;
    }
    for (int i = 1; i < shape.ndim; i++)
        if (shape.d[i] <= 0) {
            mf_fail(MF_STATUS_SHAPE, "model '%s': input axis %d is %d, must be > 0", m->name, i, shape.d[i]);
            return -1;
        }
    mf_model_node *nd = push_node(m);
    nd->shape = shape;
    return 0;
}

/* Keras' automatic names: the kind's stem, then stem_1, stem_2, ... skipping
 * any name the user already took. */
static void auto_name(mf_model *m, mf_layer *l)
{
    char cand[MF_NAME_MAX];
    for (int k = 0;; k++) {
        if (k == 0)
            snprintf(cand, sizeof cand, "%s", l->ops->default_name);
        else
            snprintf(cand, sizeof cand, "%s_%d", l->ops->default_name, k);
        if (!mf_model_find_layer(m, cand))
            break;
    }
    mf_strlcpy(l->name, cand, sizeof l->name);
}

/* Remember the first failed add: building such a model is refused, so a
 * caller that ignores a -1 never trains a silently shortened network. */
static int add_failed(mf_model *m)
{
    if (!m->broken[0])
        mf_strlcpy(m->broken, mf_last_error(), sizeof m->broken);
    return -1;
}

static int add_node(mf_model *m, mf_layer *l, const int *in, int n_in)
{
    if (!l)
        return add_failed(m); /* the constructor failed and already set the error */
    if (m->built) {
        mf_layer_free(l);
        mf_fail(MF_STATUS_INVALID, "model '%s': cannot add a layer after mf_model_build", m->name);
        return -1;
    }
    if (l->ops->n_in ? n_in != l->ops->n_in : n_in < 2 || n_in > MF_LAYER_MAX_INPUTS) {
        if (l->ops->n_in)
            mf_fail(MF_STATUS_INVALID, "model '%s': %s takes %d input(s), got %d", m->name, l->ops->kind, l->ops->n_in,
                    n_in);
        else
            mf_fail(MF_STATUS_INVALID, "model '%s': %s takes 2 to %d inputs, got %d", m->name, l->ops->kind,
                    MF_LAYER_MAX_INPUTS, n_in);
        mf_layer_free(l);
        return add_failed(m);
    }
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0 || in[i] >= m->n_nodes) {
            mf_fail(MF_STATUS_INVALID,
                    "model '%s': %s reads node %d, which does not exist (have %d; declare the input first)", m->name,
                    l->ops->kind, in[i], m->n_nodes);
            mf_layer_free(l);
            return add_failed(m);
        }
    if (!l->name[0])
        auto_name(m, l);
    else if (mf_model_find_layer(m, l->name)) {
        mf_fail(MF_STATUS_INVALID, "model '%s': duplicate layer name '%s'", m->name, l->name);
        mf_layer_free(l);
        return add_failed(m);
    }
    /* Shapes are inferred as layers are added (as Keras' functional API does),
     * so a builder can read a node's shape, and a misfit is reported at the
     * layer that causes it. */
    l->n_in = n_in; /* a kind with ops->n_in 0 takes any count it accepts */
    for (int k = 0; k < n_in; k++)
        l->in_shape[k] = m->nodes[in[k]].shape;
    mf_status s = l->ops->build(l);
    if (s != MF_STATUS_OK) {
        char buf[1024];
        mf_strlcpy(buf, mf_last_error(), sizeof buf);
        mf_fail(s, "model '%s': layer '%s' (%s): %s", m->name, l->name, l->ops->kind, buf);
        mf_strlcpy(m->broken, mf_last_error(), sizeof m->broken);
        mf_layer_free(l);
        return -1;
    }
    mf_model_node *nd = push_node(m);
    nd->layer = l;
    nd->n_in = n_in;
    nd->shape = l->out_shape;
    for (int i = 0; i < n_in; i++)
        nd->in[i] = in[i];
    return m->n_nodes - 1;
}

int mf_model_add(mf_model *m, mf_layer *l, int in) { return add_node(m, l, &in, 1); }

int mf_model_add2(mf_model *m, mf_layer *l, int a, int b)
{
    int in[2] = {a, b};
    return add_node(m, l, in, 2);
}

int mf_model_add_n(mf_model *m, mf_layer *l, const int *in, int n)
{
    if (!in || n < 1) {
        mf_layer_free(l);
        mf_fail(MF_STATUS_INVALID, "model '%s': mf_model_add_n needs at least one input node, got %d", m->name, n);
        return add_failed(m);
    }
    return add_node(m, l, in, n);
}

mf_status mf_model_build(mf_model *m, uint64_t seed)
{
    if (m->built)
        return mf_fail(MF_STATUS_INVALID, "model '%s': already built", m->name);
    if (m->broken[0])
        return mf_fail(MF_STATUS_INVALID, "model '%s' cannot be built: an earlier mf_model_add failed: %s", m->name,
                       m->broken);
    if (m->n_nodes < 2)
        return mf_fail(MF_STATUS_INVALID, "model '%s': needs an input and at least one layer", m->name);

    for (int i = 1; i < m->n_nodes; i++) /* before anything is allocated */
        MF_TRY(mf_layer_check_initializers(m->nodes[i].layer));

    /* 1. offsets: every layer reserved its named weights when it was added. */
    size_t n_params = 0, n_state = 0;
    int n_infos = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        mf_layer *l = m->nodes[i].layer;
        for (int k = 0; k < l->n_slots; k++) {
            mf_slot *sl = &l->slot[k];
            /* Keep every tensor MF_ALIGN-aligned inside the buffer: vector
             * loads never straddle, and views can be handed to BLAS as is. */
            size_t pad = MF_ALIGN / sizeof(float);
            if (sl->kind == MF_PARAM_TRAINABLE) {
                sl->offset = n_params;
                n_params += (sl->numel + pad - 1) / pad * pad;
            } else {
                sl->offset = n_state;
                n_state += (sl->numel + pad - 1) / pad * pad;
            }
            n_infos++;
        }
    }

    /* 2. one buffer each, then bind every slot as a view (llm.c's
     *    malloc_and_point_parameters). */
    m->n_params = n_params;
    m->n_state = n_state;
    m->params = mf_alloc((n_params ? n_params : 1) * sizeof(float));
    m->grads = mf_alloc((n_params ? n_params : 1) * sizeof(float));
    m->state = mf_alloc((n_state ? n_state : 1) * sizeof(float));
    m->infos = mf_alloc((size_t)(n_infos ? n_infos : 1) * sizeof *m->infos);
    m->need_grad = mf_alloc((size_t)m->n_nodes * sizeof *m->need_grad);
    m->grad_written = mf_alloc((size_t)m->n_nodes * sizeof *m->grad_written);
    m->n_infos = n_infos;
    int j = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        mf_layer *l = m->nodes[i].layer;
        for (int k = 0; k < l->n_slots; k++) {
            mf_slot *sl = &l->slot[k];
            if (sl->kind == MF_PARAM_TRAINABLE) {
                sl->data = m->params + sl->offset;
                sl->grad = m->grads + sl->offset;
            } else {
                sl->data = m->state + sl->offset;
                sl->grad = NULL;
            }
            m->infos[j++] = (mf_model_slot_ref){i, k};
        }
    }

    /* 3. Keras' default initial values, in layer order from one stream. */
    mf_rng rng;
    mf_rng_seed(&rng, seed);
    for (int i = 1; i < m->n_nodes; i++) {
        mf_layer *l = m->nodes[i].layer;
        if (l->ops->init)
            l->ops->init(l, &rng);
        mf_layer_apply_initializers(l, &rng); /* what the user chose instead */
    }
    m->built = 1;
    return MF_STATUS_OK;
}

const char *mf_model_name(const mf_model *m) { return m->name; }
int mf_model_is_built(const mf_model *m) { return m->built; }
int mf_model_num_layers(const mf_model *m) { return m->n_nodes > 0 ? m->n_nodes - 1 : 0; }

int mf_model_layer_inputs(const mf_model *m, int i, int in[8])
{
    MF_ASSERT(i >= 0 && i + 1 < m->n_nodes);
    const mf_model_node *n = &m->nodes[i + 1];
    for (int k = 0; k < n->n_in; k++)
        in[k] = n->in[k] - 1;
    return n->n_in;
}

mf_layer *mf_model_layer(const mf_model *m, int i)
{
    MF_ASSERT(i >= 0 && i + 1 < m->n_nodes);
    return m->nodes[i + 1].layer;
}

mf_layer *mf_model_find_layer(const mf_model *m, const char *name)
{
    for (int i = 1; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].layer->name, name) == 0)
            return m->nodes[i].layer;
    return NULL;
}

mf_shape mf_model_input_shape(const mf_model *m)
{
    MF_ASSERT(m->n_nodes > 0);
    return m->nodes[0].shape;
}

mf_shape mf_model_output_shape(const mf_model *m)
{
    MF_ASSERT(m->n_nodes > 0);
    return m->nodes[m->n_nodes - 1].shape;
}

float *mf_model_params(mf_model *m)
{
    MF_ASSERT(m->built);
    return m->params;
}
float *mf_model_grads(mf_model *m)
{
    MF_ASSERT(m->built);
    return m->grads;
}
float *mf_model_state(mf_model *m)
{
    MF_ASSERT(m->built);
    return m->state;
}
size_t mf_model_num_params(const mf_model *m) { return m->n_params; }
size_t mf_model_num_state(const mf_model *m) { return m->n_state; }
int mf_model_num_param_tensors(const mf_model *m) { return m->n_infos; }

mf_param_info mf_model_param(const mf_model *m, int i)
{
    MF_ASSERT(m->built && i >= 0 && i < m->n_infos);
    const mf_layer *l = m->nodes[m->infos[i].node].layer;
    const mf_slot *sl = &l->slot[m->infos[i].slot];
    mf_param_info info;
    info.layer = l->name;
    info.name = sl->name;
    info.shape = sl->shape;
    info.kind = sl->kind;
    info.offset = sl->offset;
    info.numel = sl->numel;
    info.trainable = sl->kind == MF_PARAM_TRAINABLE && l->trainable;
    return info;
}

size_t mf_model_count_trainable(const mf_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_infos; i++) {
        mf_param_info p = mf_model_param(m, i);
        if (p.trainable)
            n += p.numel;
    }
    return n;
}

size_t mf_model_count_non_trainable(const mf_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_infos; i++) {
        mf_param_info p = mf_model_param(m, i);
        if (!p.trainable)
            n += p.numel;
    }
    return n;
}

/* Size the shared workspace for a batch of N. */
static void reserve_workspace(mf_model *m, int N)
{
    if (N <= m->ws_N)
        return;
    size_t ws = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        mf_layer *l = m->nodes[i].layer;
        if (l->ops->workspace) {
            size_t w = l->ops->workspace(l, N);
            if (w > ws)
                ws = w;
        }
    }
    mf_free(m->ws);
    m->ws = mf_alloc((ws ? ws : 1) * sizeof(float));
    m->ws_floats = ws;
    m->ws_N = N;
}

/* Plan the pass (plan.h) and point every node's tensors into the arena. A
 * node needs its gradient if anything at or upstream of it trains: a frozen
 * prefix (a pretrained base under a new head) gets no gradients, and its
 * activations live only until the next layer has read them. */
static void plan_pass(mf_model *m, int N, int infer, int backward)
{
    int input_grad = backward && (m->keep & MF_KEEP_INPUT_GRAD);
    m->need_grad[0] = (unsigned char)input_grad;
    for (int i = 1; i < m->n_nodes; i++) {
        mf_model_node *nd = &m->nodes[i];
        int need = backward && mf_layer_has_trainable(nd->layer);
        for (int k = 0; k < nd->n_in; k++)
            need |= m->need_grad[nd->in[k]];
        m->need_grad[i] = (unsigned char)need;
    }
    mf_plan_make(&m->plan, m, N, infer, backward, input_grad, m->need_grad);
    if (m->plan.fold_floats > m->fold_floats) {
        mf_free(m->fold);
        m->fold = mf_alloc(m->plan.fold_floats * sizeof(float));
        m->fold_floats = m->plan.fold_floats;
    }
    if (m->plan.floats > m->arena_floats) {
        mf_free(m->arena);
        m->arena = mf_alloc_uninit(m->plan.floats * sizeof(float));
        m->arena_floats = m->plan.floats;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        mf_model_node *nd = &m->nodes[i];
        const mf_plan_node *pn = &m->plan.node[i];
        mf_shape s = nd->shape;
        s.d[0] = N;
        nd->act = mf_tensor_view(pn->act == MF_PLAN_NONE ? NULL : m->arena + pn->act, s);
        nd->dact = mf_tensor_view(pn->dact == MF_PLAN_NONE ? NULL : m->arena + pn->dact, s);
    }
    reserve_workspace(m, N);
}

static mf_exec exec_for(const mf_model *m, int i, mf_mode mode, mf_rng *rng)
{
    const mf_layer *l = m->nodes[i].layer;
    const mf_plan_node *pn = &m->plan.node[i];
    mf_exec ex;
    memset(&ex, 0, sizeof ex);
    ex.mode = (mode == MF_MODE_TRAIN && !(l->ops->infer_when_frozen && !l->trainable)) ? MF_MODE_TRAIN : MF_MODE_INFER;
    ex.rng = rng;
    ex.ws = m->ws;
    ex.ws_floats = m->ws_floats;
    ex.param_grads = l->trainable;
    ex.stat_sum = m->stat_sum;
    ex.stat_user = m->stat_user;
    ex.bn_record = m->bn_record;
    ex.bn_record_user = m->bn_record_user;
    ex.fuse_relu = pn->fuse_relu;
    ex.relu_max = pn->relu_max;
    ex.pad_top = pn->pad_top;
    ex.pad_left = pn->pad_left;
    return ex;
}

/* The derived weights of a convolution with the inference-mode BatchNorm after
 * it folded in: W'[..., f] = W[..., f] * scale[f], b'[f] = b[f] * scale[f] +
 * shift[f]. Rebuilt on every pass (a few thousand multiplies, against the
 * convolution's millions), so it can never be stale after the weights change. */
static void fold_batchnorm(mf_model *m, int i, mf_exec *ex)
{
    const mf_plan_node *pn = &m->plan.node[i];
    const mf_layer *l = m->nodes[i].layer;
    const mf_slot *k = &l->slot[0]; /* the kernel, output channels last */
    size_t F = (size_t)l->out_shape.d[l->out_shape.ndim - 1];
    float *w = m->fold + pn->fold, *b = w + (k->numel + 15) / 16 * 16, *scale = b + F;
    MF_ASSERT(mf_batchnorm_affine(m->nodes[pn->fold_bn].layer, scale, b) == (int)F);
    const mf_slot *bs = mf_layer_slot(l, "bias");
    const float *bias = bs ? bs->data : NULL;
    for (size_t f = 0; f < F; f++)
        b[f] += bias ? bias[f] * scale[f] : 0.0f;
    for (size_t j = 0; j < k->numel; j++)
        w[j] = k->data[j] * scale[j % F];
    ex->fold_w = w;
    ex->fold_b = b;
}

mf_tensor mf_model_forward(mf_model *m, const float *x, int N, mf_mode mode, mf_rng *rng)
{
    MF_ASSERT(m->built);
    MF_ASSERT(N > 0);
    plan_pass(m, N, mode == MF_MODE_INFER, mode == MF_MODE_TRAIN || (m->keep & MF_KEEP_INFER_BACKWARD));
    memcpy(m->nodes[0].act.data, x, mf_tensor_numel(&m->nodes[0].act) * sizeof(float));
    for (int i = 1; i < m->n_nodes; i++) {
        const mf_plan_node *pn = &m->plan.node[i];
        if (!pn->run)
            continue; /* done by a neighbour */
        mf_model_node *nd = &m->nodes[i];
        const mf_tensor *in[MF_LAYER_MAX_INPUTS] = {NULL};
        for (int k = 0; k < nd->n_in; k++)
            in[k] = &m->nodes[pn->in[k]].act;
        mf_exec ex = exec_for(m, i, mode, rng);
        if (pn->fold_bn)
            fold_batchnorm(m, i, &ex);
        double t0 = m->profile || mf_trace_on() ? mf_now() : 0.0;
        nd->layer->ops->forward(nd->layer, &ex, in, &m->nodes[pn->out].act);
        if (m->profile)
            m->fwd_s[i] += mf_now() - t0;
        if (mf_trace_on())
            mf_trace_span("forward", nd->layer->name, MF_TRACE_COMPUTE, t0, mf_now());
    }
    m->last_N = N;
    m->last_mode = mode;
    m->last_rng = rng;
    return m->nodes[m->n_nodes - 1].act;
}

void mf_model_zero_grad(mf_model *m)
{
    MF_ASSERT(m->built);
    memset(m->grads, 0, m->n_params * sizeof(float));
}

/* t with its data hidden unless `keep`: a backward reads only what its kind
 * declared (ops->bwd_reads), and what it did not declare is not kept by the
 * plan, so a wrong declaration fails loudly instead of reading stale memory. */
static mf_tensor shown(const mf_tensor *t, int keep)
{
    mf_tensor v = *t;
    if (!keep)
        v.data = NULL;
    return v;
}

void mf_model_backward(mf_model *m, const float *dout, float *dx)
{
    MF_ASSERT(m->built);
    MF_ASSERT(m->last_N > 0);
    if (!m->plan.backward)
        mf_panic(__FILE__, __LINE__,
                 "mf_model_backward after an inference-mode forward that kept nothing for it; "
                 "call mf_model_set_backward_keep(m, MF_KEEP_INFER_BACKWARD) before the forward pass");
    if (dx && !m->plan.input_grad)
        mf_panic(__FILE__, __LINE__,
                 "mf_model_backward asked for the input gradient, which the forward pass did "
                 "not plan for; call mf_model_set_backward_keep(m, MF_KEEP_INPUT_GRAD) before it");
    int N = m->last_N;
    memset(m->grad_written, 0, (size_t)m->n_nodes);
    mf_model_node *last = &m->nodes[m->n_nodes - 1];
    memcpy(last->dact.data, dout, mf_tensor_numel(&last->dact) * sizeof(float));
    if (m->bwd_hook) /* -1: a backward pass begins (a second one in a step is caught there) */
        m->bwd_hook(m->bwd_hook_user, -1);
    for (int i = m->n_nodes - 1; i >= 1; i--) {
        const mf_plan_node *pn = &m->plan.node[i];
        if (!pn->need_grad)
            continue;
        if (pn->run) {
            mf_model_node *nd = &m->nodes[i];
            unsigned reads = nd->layer->ops->bwd_reads;
            if (!reads)
                reads = MF_READS_ALL_IN | MF_READS_OUT;
            mf_tensor inv[MF_LAYER_MAX_INPUTS];
            const mf_tensor *in[MF_LAYER_MAX_INPUTS] = {NULL};
            mf_tensor *din[MF_LAYER_MAX_INPUTS] = {NULL};
            mf_exec ex = exec_for(m, i, (mf_mode)m->last_mode, m->last_rng);
            for (int k = 0; k < nd->n_in; k++) {
                int x = pn->in[k];
                inv[k] = shown(&m->nodes[x].act, reads & (MF_READS_IN0 << k));
                in[k] = &inv[k];
                if (m->plan.node[x].need_grad) {
                    din[k] = &m->nodes[x].dact;
                    /* the first consumer to get here writes, later ones add (Add(x, x)
                     * reads one node twice: input 0 writes, input 1 adds) */
                    ex.din_first[k] = !m->grad_written[x];
                    m->grad_written[x] = 1;
                }
            }
            mf_tensor out = shown(&m->nodes[pn->out].act, reads & MF_READS_OUT);
            double t0 = m->profile || mf_trace_on() ? mf_now() : 0.0;
            nd->layer->ops->backward(nd->layer, &ex, in, &out, &m->nodes[pn->out].dact, din);
            if (m->profile)
                m->bwd_s[i] += mf_now() - t0;
            if (mf_trace_on())
                mf_trace_span("backward", nd->layer->name, MF_TRACE_COMPUTE, t0, mf_now());
        }
        if (m->bwd_hook)
            m->bwd_hook(m->bwd_hook_user, i - 1);
    }
    if (dx)
        memcpy(dx, m->nodes[0].dact.data, (size_t)N * mf_shape_sample_numel(&m->nodes[0].shape) * sizeof(float));
}

void mf_model_set_backward_keep(mf_model *m, unsigned flags) { m->keep = flags; }
size_t mf_model_arena_bytes(const mf_model *m) { return m->plan.floats * sizeof(float); }

uint64_t mf_model_trainable_signature(const mf_model *m)
{
    /* FNV-1a over (layer index, flag): cheap enough for every step */
    uint64_t h = 14695981039346656037ull;
    for (int i = 1; i < m->n_nodes; i++) {
        h = (h ^ (uint64_t)(i * 2 + m->nodes[i].layer->trainable)) * 1099511628211ull;
    }
    return h;
}

void mf_model_set_backward_hook(mf_model *m, void (*hook)(void *user, int layer), void *user)
{
    m->bwd_hook = hook;
    m->bwd_hook_user = user;
}

void mf_model_set_stat_reduce(mf_model *m, mf_stat_reduce_fn fn, void *user)
{
    m->stat_sum = fn;
    m->stat_user = user;
}

void mf_model_set_bn_record(mf_model *m, mf_bn_record_fn fn, void *user)
{
    m->bn_record = fn;
    m->bn_record_user = user;
}

void mf_model_set_profiling(mf_model *m, int on)
{
    if (on && !m->fwd_s) {
        m->fwd_s = mf_alloc((size_t)m->n_nodes * sizeof *m->fwd_s);
        m->bwd_s = mf_alloc((size_t)m->n_nodes * sizeof *m->bwd_s);
    }
    m->profile = on && m->fwd_s;
}

void mf_model_profile_report(const mf_model *m, FILE *f)
{
    if (!m->fwd_s)
        return;
    /* totals by layer kind */
    const char *kind[32];
    double fw[32], bw[32];
    int n = 0;
    double total = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const char *k = m->nodes[i].layer->ops->kind;
        int j = 0;
        while (j < n && strcmp(kind[j], k) != 0)
            j++;
        if (j == n && n < 32) {
            kind[n] = k;
            fw[n] = bw[n] = 0.0;
            n++;
        }
        if (j < n) {
            fw[j] += m->fwd_s[i];
            bw[j] += m->bwd_s[i];
        }
        total += m->fwd_s[i] + m->bwd_s[i];
    }
    fprintf(f, "%-24s %10s %10s %7s\n", "layer kind", "forward s", "backward s", "share");
    for (int done = 0; done < n; done++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (kind[j] && (best < 0 || fw[j] + bw[j] > fw[best] + bw[best]))
                best = j;
        fprintf(f, "%-24s %10.3f %10.3f %6.1f%%\n", kind[best], fw[best], bw[best],
                total > 0 ? 100.0 * (fw[best] + bw[best]) / total : 0.0);
        kind[best] = NULL;
    }
}
