/* test_gemm.c: mf_sgemm's libxsmm paths (the 1x1 convolutions' products and
 * weight gradients) against OpenBLAS on MobileNetV2-like shapes, row counts
 * that are not multiples of the kernels' block, strided operands; and the same
 * bits for 1 and 2 threads (the row blocks and the gradient's chunks do not
 * depend on the thread count). */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "mpifit.h"
#include "tensor/gemm.h"
#include "test.h"

static void fill(float *x, size_t n, mf_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * mf_rng_uniform(r) - 1.0f;
}

/* largest |a - b| relative to the largest |b| */
static double rel(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return d / fmax(s, 1e-30);
}

/* op: 0 forward  C(M,N) = A(M,K) B(K,N) (beta 0 or 1)
 *     1 gradient C(M,N) += A^T B, A (K,M), B (K,N)
 *     2 input gradient C(M,N) = A(M,K) B^T, B (N,K) */
static const char *what[] = {"forward", "gradient", "input gradient"};

static void one(int op, int M, int N, int K, float beta, int pad, mf_rng *r)
{
    int lda = (op == 1 ? M : K) + pad, ldb = (op == 2 ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(op == 1 ? K : M) * lda, nb = (size_t)(op == 2 ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = mf_alloc(na * sizeof(float)), *B = mf_alloc(nb * sizeof(float));
    float *C0 = mf_alloc(nc * sizeof(float)), *C1 = mf_alloc(nc * sizeof(float)), *C2 = mf_alloc(nc * sizeof(float));
    fill(A, na, r);
    fill(B, nb, r);
    fill(C0, nc, r);
    memcpy(C1, C0, nc * sizeof(float));
    memcpy(C2, C0, nc * sizeof(float));
    mf_gemm_openblas_only = 1;
    mf_sgemm(op == 1, op == 2, M, N, K, 1.0f, A, lda, B, ldb, beta, C0, ldc);
    mf_gemm_openblas_only = 0;
    mf_set_num_threads(1);
    long before = mf_gemm_xsmm_count();
    mf_sgemm(op == 1, op == 2, M, N, K, 1.0f, A, lda, B, ldb, beta, C1, ldc);
    MF_CHECK_MSG(mf_gemm_xsmm_count() == before + 1, "%s M=%d N=%d K=%d: libxsmm was not used", what[op], M, N, K);
    mf_set_num_threads(2);
    mf_sgemm(op == 1, op == 2, M, N, K, 1.0f, A, lda, B, ldb, beta, C2, ldc);
    double e = rel(C1, C0, nc);
    MF_CHECK_MSG(e < 1e-5, "%s M=%d N=%d K=%d beta=%g pad=%d: libxsmm differs from OpenBLAS by %.2e", what[op], M, N, K,
                 (double)beta, pad, e);
    MF_CHECK_MSG(memcmp(C1, C2, nc * sizeof(float)) == 0, "%s M=%d N=%d K=%d: 1 and 2 threads differ", what[op], M, N,
                 K);
    mf_free(A);
    mf_free(B);
    mf_free(C0);
    mf_free(C1);
    mf_free(C2);
}

/* mf_sgemm_pointwise_backward: the same bits as the two separate products */
static void fused(int M, int Cin, int F, int first, mf_rng *r)
{
    size_t nx = (size_t)M * Cin, ny = (size_t)M * F, nw = (size_t)Cin * F;
    float *x = mf_alloc(nx * sizeof(float)), *dy = mf_alloc(ny * sizeof(float)), *W = mf_alloc(nw * sizeof(float));
    float *dx1 = mf_alloc(nx * sizeof(float)), *dx2 = mf_alloc(nx * sizeof(float));
    float *dW1 = mf_alloc(nw * sizeof(float)), *dW2 = mf_alloc(nw * sizeof(float));
    fill(x, nx, r);
    fill(dy, ny, r);
    fill(W, nw, r);
    fill(dx1, nx, r);
    fill(dW1, nw, r);
    memcpy(dx2, dx1, nx * sizeof(float));
    memcpy(dW2, dW1, nw * sizeof(float));
    mf_sgemm(1, 0, Cin, F, M, 1.0f, x, Cin, dy, F, 1.0f, dW1, F);
    mf_sgemm(0, 1, M, Cin, F, 1.0f, dy, F, W, F, first ? 0.0f : 1.0f, dx1, Cin);
    MF_CHECK(mf_sgemm_pointwise_backward(M, Cin, F, x, dy, W, dx2, first, dW2) == 1);
    MF_CHECK_MSG(memcmp(dx1, dx2, nx * sizeof(float)) == 0 && memcmp(dW1, dW2, nw * sizeof(float)) == 0,
                 "pointwise backward M=%d Cin=%d F=%d: the fused pass differs from the two products", M, Cin, F);
    mf_free(x);
    mf_free(dy);
    mf_free(W);
    mf_free(dx1);
    mf_free(dx2);
    mf_free(dW1);
    mf_free(dW2);
}

int main(void)
{
    mf_rng r;
    mf_rng_seed(&r, 5);
    /* forward and input-gradient products: rows x (Cin -> F) */
    one(0, 4096, 96, 16, 0.0f, 0, &r);
    one(0, 1000, 24, 144, 0.0f, 0, &r); /* rows not a multiple of 64 */
    one(0, 512, 384, 160, 0.0f, 0, &r);
    one(0, 777, 8, 48, 1.0f, 0, &r); /* accumulate */
    one(0, 300, 40, 19, 0.0f, 3, &r); /* strided operands */
    /* weight gradients: (Cin, F) summed over rows */
    one(1, 16, 96, 8192, 1.0f, 0, &r); /* several chunks */
    one(1, 144, 24, 5000, 1.0f, 0, &r); /* a partial chunk and a partial block */
    one(1, 192, 320, 1024, 1.0f, 0, &r);
    one(1, 19, 40, 3001, 1.0f, 2, &r);
    /* input gradients: rows x (F -> Cin) through the transposed weights */
    one(2, 4096, 16, 96, 0.0f, 0, &r);
    one(2, 1000, 144, 24, 1.0f, 0, &r);
    one(2, 300, 19, 40, 0.0f, 3, &r);
    /* large weight matrices stay with OpenBLAS (faster there) */
    {
        static float A[256 * 512], B[512 * 512], C[256 * 512];
        long before = mf_gemm_xsmm_count();
        mf_sgemm(0, 0, 256, 512, 512, 1.0f, A, 512, B, 512, 0.0f, C, 512);
        MF_CHECK_MSG(mf_gemm_xsmm_count() == before, "a 512x512 weight matrix went to libxsmm");
    }
    /* the fused backward of a 1x1 convolution */
    fused(5000, 24, 144, 1, &r);
    fused(4096, 96, 16, 0, &r);
    fused(130, 19, 40, 1, &r);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
