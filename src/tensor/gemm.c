/* gemm.c: cblas wrappers (OpenBLAS) with one thread pool.
 *
 * OpenBLAS' own pthreads and our OpenMP kernels would be two thread pools on
 * the same cores, each spinning while the other works: on this 2-core machine
 * that made MobileNetV2 training 2x slower with 2 threads than with 1. So
 * OpenBLAS runs single-threaded and mf_sgemm splits a large product into
 * row (or column) blocks across the OpenMP threads, each block one
 * single-threaded cblas_sgemm. Inside a parallel region (a kernel already
 * split over images) a product runs as is. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include "gemm.h"
#include "../core/core.h"

/* OpenBLAS' own extensions (declared in its cblas.h; repeated here so that a
 * reference cblas.h found first still compiles against libopenblas). */
void  openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

/* OpenBLAS goes single-threaded exactly once. mf_sgemm runs inside OpenMP
 * parallel regions (kernels split over images), so several threads can make
 * the first call at the same moment: a lazily tested plain flag would be a
 * data race, and openblas_set_num_threads itself is not safe to run
 * concurrently. pthread_once makes the first caller do it and the others wait. */
static pthread_once_t blas_single_once = PTHREAD_ONCE_INIT;

static void blas_single(void) { openblas_set_num_threads(1); }

/* Below this many multiply-adds a product is not worth splitting. */
#define SPLIT_MIN_FLOPS (1 << 18)

void mf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    MF_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    pthread_once(&blas_single_once, blas_single);
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt <= 1 || (double)M * N * K < SPLIT_MIN_FLOPS) {
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* split the longer side of C into nt blocks: rows of op(A) or columns of op(B) */
    int by_rows = M >= N;
    int len = by_rows ? M : N;
    if (nt > len)
        nt = len;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = (int)((long)len * t / n), hi = (int)((long)len * (t + 1) / n);
        if (hi > lo) {
            if (by_rows) {
                const float *a = ta ? A + lo : A + (size_t)lo * lda;
                cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)lo * ldc,
                            ldc);
            } else {
                const float *b = tb ? B + (size_t)lo * ldb : B + lo;
                cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
            }
        }
    }
}

static int num_threads = 0;

void mf_set_num_threads(int n)
{
    MF_ASSERT(n > 0);
    num_threads = n;
    pthread_once(&blas_single_once, blas_single);  /* before any product, outside parallel regions */
    omp_set_num_threads(n);
}

int mf_get_num_threads(void) { return num_threads > 0 ? num_threads : omp_get_max_threads(); }

const char *mf_blas_info(void) { return openblas_get_config(); }

double mf_sgemm_peak_gflops(int n, int threads, int via_mf, int reps)
{
    MF_ASSERT(n > 0 && threads > 0 && reps > 0);
    size_t nn = (size_t)n * n;
    float *a = mf_alloc(nn * sizeof *a), *b = mf_alloc(nn * sizeof *b), *c = mf_alloc(nn * sizeof *c);
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 17) * 0.01f - 0.08f;
        b[i] = (float)(i % 13) * 0.01f - 0.06f;
    }
    int keep = mf_get_num_threads();
    if (via_mf)
        mf_set_num_threads(threads);
    else
        openblas_set_num_threads(threads);
    double best = 0.0;
    for (int r = 0; r < reps + 1; r++) {  /* the first run warms the caches and thread pools up */
        double t0 = omp_get_wtime();
        if (via_mf)
            mf_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double s = omp_get_wtime() - t0;
        if (r > 0 && s > 0.0 && 2.0 * n * (double)n * n / s * 1e-9 > best)
            best = 2.0 * n * (double)n * n / s * 1e-9;
    }
    mf_set_num_threads(keep);  /* OpenBLAS single-threaded again, as mf_sgemm needs */
    mf_free(a);
    mf_free(b);
    mf_free(c);
    return best;
}
