/* sgd.c: the SGD update kernels, as Keras 3's keras.optimizers.SGD computes them.
 *
 *   plain (momentum == 0):  p -= lr * g
 *   momentum:               v  = momentum * v - lr * g
 *                           p += v
 *   Nesterov:               v  = momentum * v - lr * g
 *                           p += momentum * v - lr * g      (with the new v)
 *   decoupled weight decay, before the step (Keras `weight_decay`, SGDW):
 *                           p -= lr * weight_decay * p
 *
 * The momentum buffer holds the velocity *including* lr (Keras' convention,
 * unlike PyTorch's v = mu*v + g; p -= lr*v): after an lr change the old velocity
 * keeps its old scale, exactly as in Keras. The update term is formed first and
 * then added to p, Keras' order of float operations. */
#include "optim_internal.h"

/* p, g: n floats */
void mf_sgd_update(float *restrict p, const float *restrict g, size_t n, float lr, float decay)
{
#pragma omp parallel for simd schedule(static) if (n > MF_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] - decay * p[i];
        p[i] = pi - lr * g[i];
    }
}

/* p, g, v: n floats */
void mf_sgd_momentum_update(float *restrict p, const float *restrict g, float *restrict v, size_t n, float lr,
                            float momentum, int nesterov, float decay)
{
    /* Two loops rather than a branch per element, so each stays a plain
     * vectorisable stream. */
    if (nesterov) {
#pragma omp parallel for simd schedule(static) if (n > MF_OPTIM_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float pi = p[i] - decay * p[i];
            float vi = momentum * v[i] - lr * g[i];
            v[i] = vi;
            p[i] = pi + (momentum * vi - lr * g[i]);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n > MF_OPTIM_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float pi = p[i] - decay * p[i];
            float vi = momentum * v[i] - lr * g[i];
            v[i] = vi;
            p[i] = pi + vi;
        }
    }
}
