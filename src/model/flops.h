/* flops.h (private): analytic floating-point operation counts of a model, for
 * the training benchmark's achieved GFLOP/s (`mpifit bench`). */
#ifndef MF_FLOPS_H
#define MF_FLOPS_H
#include "mpifit/model.h"

/* FLOPs of one forward pass of a batch of N through m (built), plus, when
 * training, its backward pass. A multiply-add counts 2:
 *   Conv2D           2*N*Ho*Wo*K*K*Cin*F      (+ N*Ho*Wo*F for the bias)
 *   DepthwiseConv2D  2*N*Ho*Wo*K*K*C          (+ N*Ho*Wo*C for the bias)
 *   Dense            2*N*Cin*U                (+ N*U for the bias)
 *   elementwise kinds a few per output element (BatchNormalization 4 in
 *                    training, 2 in inference; ReLU, Add, Dropout 1;
 *                    GlobalAveragePooling2D 1 per input element; ZeroPadding2D 0).
 * Backward, as mf_model_backward runs it: a layer back-propagates only if it
 * or something upstream of it trains (a frozen prefix costs 0); it then pays
 * its forward cost once for the parameter gradients (dW) if it trains and once
 * for the input gradient (dx) if an input needs one (the model input never
 * does). Elementwise kinds pay ~2x their forward count. Kinds not listed count
 * 0. Not counted: the loss, the optimizer, the allreduce. */
double mf_model_flops(const mf_model *m, int N, int training);
#endif
