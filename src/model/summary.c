/* summary.c: Keras' model.summary() for an mpifit model, and freezing a prefix
 * of the layers. */
#include <string.h>
#include "model_internal.h"

/* 2257984 -> "2,257,984" */
static const char *thousands(size_t v, char *buf, size_t n)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%zu", v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        buf[o++] = raw[i];
        if ((len - i - 1) % 3 == 0 && i + 1 < len)
            buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

static size_t layer_params(const mf_layer *l)
{
    size_t n = 0;
    for (int k = 0; k < l->n_slots; k++)
        n += l->slot[k].numel;
    return n;
}

static const char *node_name(const mf_model *m, int i)
{
    return i == 0 ? mf_model_input_name(m) : m->nodes[i].layer->name;
}

void mf_model_summary(const mf_model *m, FILE *f)
{
    const char *rule =
        "____________________________________________________________________________________________________";
    const char *dbl =
        "====================================================================================================";
    char a[96], b[64], c[32];
    fprintf(f, "Model: \"%s\"\n%s\n", m->name, rule);
    fprintf(f, " %-36s %-26s %-12s %s\n%s\n", "Layer (type)", "Output Shape", "Param #", "Connected to", dbl);
    for (int i = 0; i < m->n_nodes; i++) {
        const mf_model_node *nd = &m->nodes[i];
        snprintf(a, sizeof a, "%s (%s)", node_name(m, i), i == 0 ? "InputLayer" : nd->layer->ops->kind);
        mf_shape_str(&nd->shape, b, sizeof b);
        thousands(i == 0 ? 0 : layer_params(nd->layer), c, sizeof c);
        fprintf(f, " %-36s %-26s %-12s", a, b, c);
        for (int k = 0; k < nd->n_in; k++)
            fprintf(f, "%s%s", k ? ", " : "", node_name(m, nd->in[k]));
        fprintf(f, "%s\n", i == 0 ? "[]" : "");
    }
    size_t tr = m->built ? mf_model_count_trainable(m) : 0, nt = m->built ? mf_model_count_non_trainable(m) : 0;
    fprintf(f, "%s\n", dbl);
    fprintf(f, "Total params: %s\n", thousands(tr + nt, c, sizeof c));
    fprintf(f, "Trainable params: %s\n", thousands(tr, c, sizeof c));
    fprintf(f, "Non-trainable params: %s\n%s\n", thousands(nt, c, sizeof c), rule);
}

mf_status mf_model_set_trainable_upto(mf_model *m, const char *last, int trainable)
{
    int end = -1;
    for (int i = 1; i < m->n_nodes && end < 0; i++)
        if (strcmp(m->nodes[i].layer->name, last) == 0)
            end = i;
    if (end < 0)
        return mf_fail(MF_STATUS_INVALID, "model '%s' has no layer '%s' to freeze up to", m->name, last);
    for (int i = 1; i <= end; i++)
        m->nodes[i].layer->trainable = trainable != 0;
    return MF_STATUS_OK;
}

mf_status mf_model_set_trainable_from(mf_model *m, const char *first, int train_bn)
{
    int start = -1;
    for (int i = 1; i < m->n_nodes && start < 0; i++)
        if (strcmp(m->nodes[i].layer->name, first) == 0)
            start = i;
    if (start < 0)
        return mf_fail(MF_STATUS_INVALID, "model '%s' has no layer '%s' to train from (`mpifit summary` lists them)",
                       m->name, first);
    for (int i = 1; i < m->n_nodes; i++) {
        mf_layer *l = m->nodes[i].layer;
        /* Keras' fine-tuning recipe: BatchNorm of the unfrozen part stays
         * frozen (inference mode, statistics of the pretraining data) unless
         * asked; a small fine-tuning batch would otherwise wreck them */
        int bn = l->ops->infer_when_frozen != 0;
        l->trainable = i >= start && (train_bn || !bn);
    }
    return MF_STATUS_OK;
}
