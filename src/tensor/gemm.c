/* gemm.c: cblas wrappers (OpenBLAS). */
#include <cblas.h>
#include <omp.h>
#include "gemm.h"
#include "../core/core.h"

/* OpenBLAS' own extensions (declared in its cblas.h; repeated here so that a
 * reference cblas.h found first still compiles against libopenblas). */
void  openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

void mf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    MF_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int num_threads = 0;

void mf_set_num_threads(int n)
{
    MF_ASSERT(n > 0);
    num_threads = n;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

int mf_get_num_threads(void) { return num_threads > 0 ? num_threads : omp_get_max_threads(); }

const char *mf_blas_info(void) { return openblas_get_config(); }
