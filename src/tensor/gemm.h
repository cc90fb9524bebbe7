/* gemm.h: the BLAS boundary. Every matrix product in mpifit goes through here,
 * row-major, so a different BLAS or our own kernel is a one-file change. */
#ifndef MF_GEMM_H
#define MF_GEMM_H
#include "mpifit/tensor.h" /* mf_set_num_threads lives in gemm.c */

/* C(M,N) = alpha * op(A) * op(B) + beta * C, row-major.
 *   op(A): (M,K), A stored (M,K) with lda, or (K,M) when ta
 *   op(B): (K,N), B stored (K,N) with ldb, or (N,K) when tb */
void mf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/* Best GFLOP/s (2 per multiply-add) of reps square row-major products
 * C(n,n) = A(n,n) B(n,n) after one warm-up run: via_mf == 0 calls cblas_sgemm
 * with OpenBLAS' own thread count set to `threads`; via_mf == 1 calls mf_sgemm
 * with `threads` OpenMP threads (OpenBLAS single-threaded, as training runs
 * it). Restores the thread settings it found. For `mpifit bench --gemm`. */
double mf_sgemm_peak_gflops(int n, int threads, int via_mf, int reps);

/* The two backward products of a 1x1 convolution in one pass over dy:
 *   dx (M,Cin) = (dx_first) or += dy (M,F) W^T, W (Cin,F)   (dx may be NULL)
 *   dW (Cin,F) += x^T dy, x (M,Cin)                          (dW may be NULL)
 * with the same blocks, chunks and so the same bits as the two mf_sgemm
 * calls. Returns 0 (nothing done) where libxsmm cannot: make those calls. */
int mf_sgemm_pointwise_backward(int M, int Cin, int F, const float *x, const float *dy, const float *W, float *dx,
                                int dx_first, float *dW);

/* 1: every product through OpenBLAS (tests compare the two paths). */
extern int mf_gemm_openblas_only;
/* Products computed by libxsmm so far (tests check that a path was taken). */
long mf_gemm_xsmm_count(void);

/* "OpenBLAS 0.3.21 ..." */
const char *mf_blas_info(void);
#endif
