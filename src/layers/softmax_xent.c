/* softmax_xent.c: softmax fused with sparse categorical cross-entropy from
 * logits (Keras SparseCategoricalCrossentropy(from_logits=True) with the default
 * reduction, sum over batch size). Fusing keeps it stable: log softmax is
 * z - max - log(sum exp(z - max)), never log of an underflowed probability. */
#include <math.h>
#include "layer.h"

/* log(sum exp(z)) of one row z (C), as max + log(sum exp(z - max)) */
static double log_sum_exp(const float *z, int C)
{
    float mx = z[0];
    for (int c = 1; c < C; c++)
        if (z[c] > mx)
            mx = z[c];
    double sum = 0.0;
    for (int c = 0; c < C; c++)
        sum += exp((double)z[c] - mx);
    return (double)mx + log(sum);
}

void mf_softmax(float *probs, const float *logits, int N, int C)
{
    MF_ASSERT(N > 0 && C > 0);
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * C;
        double lse = log_sum_exp(z, C);
        for (int c = 0; c < C; c++)
            probs[(size_t)n * C + c] = (float)(exp((double)z[c] - lse));
    }
}

double mf_softmax_xent_forward(float *probs, const float *logits, const int32_t *labels, const float *weights, int N,
                               int C)
{
    MF_ASSERT(N > 0 && C > 0);
    double total = 0.0;
    if (probs)
        mf_softmax(probs, logits, N, C);
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * C;
        int y = labels[n];
        MF_ASSERT(y >= 0 && y < C);
        double lse = log_sum_exp(z, C);
        double w = weights ? (double)weights[n] : 1.0;
        total += w * (lse - (double)z[y]);
    }
    return total / N;
}

void mf_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, const float *weights, int N,
                              int C, float dloss)
{
    MF_ASSERT(N > 0 && C > 0);
    for (int n = 0; n < N; n++) {
        float s = dloss * (weights ? weights[n] : 1.0f) / (float)N;
        int y = labels[n];
        MF_ASSERT(y >= 0 && y < C);
        for (int c = 0; c < C; c++) {
            float p = probs[(size_t)n * C + c];
            dlogits[(size_t)n * C + c] = s * (p - (c == y ? 1.0f : 0.0f));
        }
    }
}
