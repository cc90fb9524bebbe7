/* adam.c: the Adam update kernel, as Keras 3's keras.optimizers.Adam (and
 * tf.keras 2.x) computes it: the "epsilon-hat" form of Kingma & Ba (2015),
 * Section 2, where epsilon is added to sqrt(v) without bias correction:
 *
 *   t    = iterations + 1
 *   m    = beta1 * m + (1 - beta1) * g
 *   v    = beta2 * v + (1 - beta2) * g * g
 *   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   p   -= lr_t * m / (sqrt(v) + epsilon)
 *   decoupled weight decay, before the step (Keras `weight_decay`, i.e. AdamW):
 *   p   -= lr * weight_decay * p            (lr, not lr_t)
 *
 * Keras evaluates the moments as m += (1 - beta1) * (g - m), the same value;
 * we do too, to stay close to its float rounding. Because epsilon is not
 * bias-corrected, Keras' 1e-7 is not PyTorch's 1e-8 on m_hat / sqrt(v_hat):
 * porting hyper-parameters between the two is not exact.
 *
 * beta^t is computed in double: in float, 1 - 0.999^t loses most of its digits
 * for small t, and the correction is what makes the first steps ~lr in size. */
#include <math.h>
#include "optim_internal.h"

/* p, g, m, v: n floats */
void mf_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                    float lr, float beta1, float beta2, float epsilon, long t, float decay)
{
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    const float lr_t = (float)((double)lr * sqrt(bc2) / bc1);
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
#pragma omp parallel for simd schedule(static) if (n > MF_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] - decay * p[i];
        float gi = g[i];
        float mi = m[i] + c1 * (gi - m[i]);
        float vi = v[i] + c2 * (gi * gi - v[i]);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr_t * mi / (sqrtf(vi) + epsilon);
    }
}
