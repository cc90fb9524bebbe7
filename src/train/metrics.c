/* metrics.c: Keras' logs dict and Metric objects (update_state / result /
 * reset_state), each kept as (total, count) so that summing the states of all
 * ranks gives the exact global value, not an average of averages. */
#include <math.h>
#include <string.h>
#include "fit_internal.h"

void mf_logs_clear(mf_logs *l) { l->n = 0; }

void mf_logs_set(mf_logs *l, const char *name, double v)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) {
            l->value[i] = v;
            return;
        }
    if (l->n >= MF_LOGS_MAX)
        return; /* documented: extra names are dropped */
    mf_strlcpy(l->name[l->n], name, sizeof l->name[0]);
    l->value[l->n++] = v;
}

int mf_logs_get(const mf_logs *l, const char *name, double *v)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) {
            if (v)
                *v = l->value[i];
            return 1;
        }
    return 0;
}

static mf_metric make(const char *name, mf_metric_kind kind, int k)
{
    mf_metric m;
    memset(&m, 0, sizeof m);
    mf_strlcpy(m.name, name, sizeof m.name);
    m.kind = kind;
    m.k = k;
    return m;
}

mf_metric mf_metric_mean(const char *name) { return make(name, MF_METRIC_MEAN, 0); }
mf_metric mf_metric_accuracy(const char *name) { return make(name, MF_METRIC_SPARSE_ACCURACY, 1); }
mf_metric mf_metric_top_k(const char *name, int k) { return make(name, MF_METRIC_SPARSE_TOP_K, k > 0 ? k : 5); }
void mf_metric_reset(mf_metric *m) { m->total = m->count = 0.0; }

void mf_metric_update(mf_metric *m, double value, double weight)
{
    m->total += value * weight;
    m->count += weight;
}

/* logits: (N, C)  labels: (N)  weights: (N) or NULL */
void mf_metric_update_logits(mf_metric *m, const float *logits, const int32_t *labels, const float *weights, int N,
                             int C)
{
    MF_ASSERT(m->kind != MF_METRIC_MEAN);
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * C;
        float zy = z[labels[n]];
        /* rank of the true class: how many logits beat it. Ties go against the
         * label for later indices and for it before (argmax takes the first). */
        int better = 0;
        for (int c = 0; c < C; c++)
            better += z[c] > zy || (z[c] == zy && c < labels[n]);
        int hit = better < (m->kind == MF_METRIC_SPARSE_ACCURACY ? 1 : m->k);
        double w = weights ? (double)weights[n] : 1.0;
        m->total += hit * w;
        m->count += w;
    }
}

double mf_metric_result(const mf_metric *m) { return m->count > 0.0 ? m->total / m->count : 0.0; }
