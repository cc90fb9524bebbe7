/* optim_internal.h: the optimizer update kernels, shared by optimizer.c (which
 * walks the model's trainable tensors) and sgd.c / adam.c (which own the
 * formulas). Not installed.
 *
 * Every kernel updates one contiguous tensor of n floats in place:
 *   p: parameters (n)   g: gradients (n)   v, m: optimizer state (n, same offsets)
 * `decay` is lr * weight_decay (Keras 3 decoupled weight decay, AdamW / SGDW):
 * p -= decay * p happens before the gradient step, fused into the same pass so
 * the buffer is streamed once. The gradient step does not read p, so fusing
 * gives exactly Keras' two-pass result. decay = 0 leaves p unchanged (finite p).
 * The pointers must not alias (restrict): they are slices of distinct buffers. */
#ifndef MF_OPTIM_INTERNAL_H
#define MF_OPTIM_INTERNAL_H
#include <stddef.h>

/* Tensors smaller than this run on the calling thread: an OpenMP fork costs
 * more than streaming a few hundred KiB (same threshold as the layer kernels). */
#define MF_OPTIM_PAR_MIN 65536

/* Plain SGD (momentum 0): p -= lr * g. */
void mf_sgd_update(float *restrict p, const float *restrict g, size_t n, float lr, float decay);
/* SGD with momentum (Keras): v = momentum*v - lr*g; p += v, or with Nesterov
 * p += momentum*v - lr*g (v already updated). */
void mf_sgd_momentum_update(float *restrict p, const float *restrict g, float *restrict v, size_t n, float lr,
                            float momentum, int nesterov, float decay);
/* Adam (Keras/TF epsilon-hat form) at step t = iterations + 1 (t >= 1):
 * bias corrections computed in double from t, then one pass over the tensor. */
void mf_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                    float lr, float beta1, float beta2, float epsilon, long t, float decay);
#endif
