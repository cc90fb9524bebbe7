/* gemm.c: cblas wrappers (OpenBLAS) with one thread pool.
 *
 * OpenBLAS' own pthreads and our OpenMP kernels would be two thread pools on
 * the same cores, each spinning while the other works: on this 2-core machine
 * that made MobileNetV2 training 2x slower with 2 threads than with 1. So
 * OpenBLAS runs single-threaded and mf_sgemm cuts a large product into
 * fixed row (or column) blocks shared out over the OpenMP threads, each block
 * one single-threaded cblas_sgemm; inside a parallel region (a kernel already
 * split over images) the same blocks run one after another. The blocks do
 * not depend on the thread count, so neither do the results. */
#include <cblas.h>
#include <libxsmm.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include "gemm.h"
#include "../core/core.h"

/* OpenBLAS' own extensions (declared in its cblas.h; repeated here so that a
 * reference cblas.h found first still compiles against libopenblas). */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

/* OpenBLAS goes single-threaded exactly once. mf_sgemm runs inside OpenMP
 * parallel regions (kernels split over images), so several threads can make
 * the first call at the same moment: a lazily tested plain flag would be a
 * data race, and openblas_set_num_threads itself is not safe to run
 * concurrently. pthread_once makes the first caller do it and the others wait. */
static pthread_once_t blas_single_once = PTHREAD_ONCE_INIT;

static void blas_single(void) { openblas_set_num_threads(1); }

/* A split product: blocks of at least SPLIT_BLOCK rows (or columns) of C,
 * at most SPLIT_MAX of them (each a cblas_sgemm call, which packs its
 * operands again). */
#define SPLIT_BLOCK 128
#define SPLIT_MAX 8
/* Below this many multiply-adds a product is not worth splitting. */
#define SPLIT_MIN_FLOPS (1 << 18)

/* ---- libxsmm: the pointwise convolutions' tall and skinny products ------
 * MobileNetV2's 1x1 convolutions multiply N*H*W rows (thousands to a hundred
 * thousand) by 8..1280 channels. OpenBLAS packs both operands for every call
 * and clears C first when beta = 0 (a whole extra pass over the output);
 * libxsmm's JIT-generated kernels for a block of rows read the operands where
 * they are. Measured on MobileNetV2's own shapes (alpha 1.0 at 128 px and
 * alpha 0.35 at 96 px, batch 32, 2 threads): forward products 15.8 ms with
 * OpenBLAS, 12.2 ms with libxsmm (BLIS 18.6 ms); weight gradients 22.5 ms
 * and 14.9 ms. OpenBLAS stays the general BLAS and the fallback.
 *
 * libxsmm is column-major: row-major C(M,N) = A(M,K) B(K,N) is column-major
 * C'(N,M) = B'(N,K) A'(K,M), so a kernel is dispatched with m = N, n = a block
 * of rows, k = K. */
#define XS_ROWS 64 /* rows of C per kernel call */
#define XS_CHUNK 2048 /* rows of a weight gradient's partial sum */
/* libxsmm where the weight matrix (K x N of a product, M x N of a weight
 * gradient) has at most XS_WEIGHTS entries: there it beat OpenBLAS by
 * 1.2-1.6x; on MobileNetV2's last layers (576x160 and up, few rows) OpenBLAS
 * is as fast or faster, and on large square products 2-4x faster (358 vs 90
 * GFLOP/s at n = 2048, 2 threads). */
#define XS_WEIGHTS 65536
static int xs_fits(int a, int b) { return (long)a * b <= XS_WEIGHTS; }

int mf_gemm_openblas_only;
static atomic_long xsmm_calls;
long mf_gemm_xsmm_count(void) { return atomic_load(&xsmm_calls); }

static pthread_once_t xsmm_once = PTHREAD_ONCE_INIT;
static void xsmm_init(void) { libxsmm_init(); }

static libxsmm_smmfunction xs_kernel(int m, int n, int k, int lda, int ldb, int ldc, float beta, int flags)
{
    float alpha = 1.0f;
    libxsmm_blasint la = lda, lb = ldb, lc = ldc;
    return libxsmm_smmdispatch(m, n, k, &la, &lb, &lc, &alpha, &beta, &flags, NULL);
}

/* C(M,N) (beta 0: =, 1: +=) A(M,K) B(K,N), row-major, rows over the threads
 * (nt of them; 1 inside a parallel region). Each row of C is computed by one
 * kernel call whatever the thread count. Returns 0 if libxsmm has no kernel. */
static int xs_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 int nt)
{
    int rem = M % XS_ROWS;
    libxsmm_smmfunction full = xs_kernel(N, XS_ROWS, K, ldb, lda, ldc, beta, LIBXSMM_GEMM_FLAG_NONE);
    libxsmm_smmfunction tail = rem ? xs_kernel(N, rem, K, ldb, lda, ldc, beta, LIBXSMM_GEMM_FLAG_NONE) : full;
    if (!full || !tail)
        return 0;
    atomic_fetch_add_explicit(&xsmm_calls, 1, memory_order_relaxed);
    int blocks = (M + XS_ROWS - 1) / XS_ROWS;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int b = 0; b < blocks; b++) {
        size_t r = (size_t)b * XS_ROWS;
        libxsmm_smmfunction f = (rem && b == blocks - 1) ? tail : full;
        f(B, A + r * lda, C + r * ldc);
    }
    return 1;
}

/* C(M,N) += A^T B with A stored (K,M), B (K,N): a weight gradient, summed
 * over the K rows of a batch. The rows go in chunks of XS_CHUNK, each chunk
 * summed into its own partial, and the partials added in chunk order: the
 * result depends neither on the thread count nor on timing. scratch: at
 * least ceil(K / XS_CHUNK) * M * N floats. Returns 0 if libxsmm has no kernel. */
static int xs_tn_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int nt)
{
    int chunks = (K + XS_CHUNK - 1) / XS_CHUNK, rem = K % XS_ROWS;
    /* column-major: C'(N,M) += B'(N,k) A'(k,M)^T, A' stored (M,k): trans B */
    libxsmm_smmfunction first = xs_kernel(N, M, XS_ROWS, ldb, lda, N, 0.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
    libxsmm_smmfunction next = xs_kernel(N, M, XS_ROWS, ldb, lda, N, 1.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
    libxsmm_smmfunction tail0 = rem ? xs_kernel(N, M, rem, ldb, lda, N, 0.0f, LIBXSMM_GEMM_FLAG_TRANS_B) : first;
    libxsmm_smmfunction tail1 = rem ? xs_kernel(N, M, rem, ldb, lda, N, 1.0f, LIBXSMM_GEMM_FLAG_TRANS_B) : next;
    if (!first || !next || !tail0 || !tail1)
        return 0;
    atomic_fetch_add_explicit(&xsmm_calls, 1, memory_order_relaxed);
    size_t mn = (size_t)M * N;
    float *part = mf_alloc_uninit((size_t)chunks * mn * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int c = 0; c < chunks; c++) {
        int r0 = c * XS_CHUNK, r1 = r0 + XS_CHUNK < K ? r0 + XS_CHUNK : K;
        float *P = part + (size_t)c * mn; /* (M,N) row-major = C'(N,M) column-major, ld N */
        for (int r = r0; r < r1; r += XS_ROWS) {
            int last = r + XS_ROWS > K;
            libxsmm_smmfunction f = r == r0 ? (last ? tail0 : first) : (last ? tail1 : next);
            f(B + (size_t)r * ldb, A + (size_t)r * lda, P);
        }
    }
    for (int c = 0; c < chunks; c++) {
        const float *P = part + (size_t)c * mn;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] += P[(size_t)i * N + j];
    }
    mf_free(part);
    return 1;
}

int mf_sgemm_pointwise_backward(int M, int Cin, int F, const float *x, const float *dy, const float *W, float *dx,
                                int dx_first, float *dW)
{
    if (M < XS_ROWS || !xs_fits(Cin, F) || mf_gemm_openblas_only || (!dx && !dW))
        return 0;
    pthread_once(&blas_single_once, blas_single);
    pthread_once(&xsmm_once, xsmm_init);
    int rem = M % XS_ROWS, chunks = (M + XS_CHUNK - 1) / XS_CHUNK;
    float beta_x = dx_first ? 0.0f : 1.0f;
    /* dx blocks: C'(Cin, rows) = Wt'(Cin, F) dy'(F, rows); dW: as xs_tn_acc */
    libxsmm_smmfunction xf = xs_kernel(Cin, XS_ROWS, F, Cin, F, Cin, beta_x, LIBXSMM_GEMM_FLAG_NONE);
    libxsmm_smmfunction xt = rem ? xs_kernel(Cin, rem, F, Cin, F, Cin, beta_x, LIBXSMM_GEMM_FLAG_NONE) : xf;
    libxsmm_smmfunction w0 = xs_kernel(F, Cin, XS_ROWS, F, Cin, F, 0.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
    libxsmm_smmfunction w1 = xs_kernel(F, Cin, XS_ROWS, F, Cin, F, 1.0f, LIBXSMM_GEMM_FLAG_TRANS_B);
    libxsmm_smmfunction t0 = rem ? xs_kernel(F, Cin, rem, F, Cin, F, 0.0f, LIBXSMM_GEMM_FLAG_TRANS_B) : w0;
    libxsmm_smmfunction t1 = rem ? xs_kernel(F, Cin, rem, F, Cin, F, 1.0f, LIBXSMM_GEMM_FLAG_TRANS_B) : w1;
    if (!xf || !xt || !w0 || !w1 || !t0 || !t1)
        return 0;
    atomic_fetch_add_explicit(&xsmm_calls, 1, memory_order_relaxed);
    size_t cf = (size_t)Cin * F;
    float *wt = NULL, *part = NULL;
    if (dx) { /* W (Cin,F) -> Wt (F,Cin) */
        wt = mf_alloc_uninit(cf * sizeof(float));
        for (int i = 0; i < Cin; i++)
            for (int j = 0; j < F; j++)
                wt[(size_t)j * Cin + i] = W[(size_t)i * F + j];
    }
    if (dW)
        part = mf_alloc_uninit((size_t)chunks * cf * sizeof(float));
    int nt = (double)M * Cin * F < SPLIT_MIN_FLOPS || omp_in_parallel() ? 1 : omp_get_max_threads();
/* one chunk at a time per thread: each block of dy is read from memory
     * once, for dx and then, still in cache, for dW */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int c = 0; c < chunks; c++) {
        int r0 = c * XS_CHUNK, r1 = r0 + XS_CHUNK < M ? r0 + XS_CHUNK : M;
        float *P = part ? part + (size_t)c * cf : NULL;
        for (int r = r0; r < r1; r += XS_ROWS) {
            int last = r + XS_ROWS > M;
            const float *dyb = dy + (size_t)r * F;
            if (dx)
                (last ? xt : xf)(wt, dyb, dx + (size_t)r * Cin);
            if (P)
                (r == r0 ? (last ? t0 : w0) : (last ? t1 : w1))(dyb, x + (size_t)r * Cin, P);
        }
    }
    if (dW) {
        for (int c = 0; c < chunks; c++) { /* in chunk order: independent of the threads */
            const float *P = part + (size_t)c * cf;
            for (size_t i = 0; i < cf; i++)
                dW[i] += P[i];
        }
    }
    mf_free(wt);
    mf_free(part);
    return 1;
}

void mf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    MF_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    pthread_once(&blas_single_once, blas_single);
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* the small dimensions must be small: N and K of a product, M and N of a
     * weight gradient (whose K is the batch's rows) */
    if (alpha == 1.0f && xs_fits(N, ta ? M : K) && (ta ? K : M) >= XS_ROWS && !mf_gemm_openblas_only && !(ta && tb)) {
        pthread_once(&xsmm_once, xsmm_init);
        int small = (double)M * N * K < SPLIT_MIN_FLOPS;
        if (tb && (beta == 0.0f || beta == 1.0f)) {
            /* input gradients, dx = dy W^T: libxsmm 1.17 has no kernels with
             * a transposed first operand, so transpose the (small) weights
             * once, B (N,K) -> (K,N), and use the plain kernels */
            float *bt = mf_alloc_uninit((size_t)K * N * sizeof(float));
            for (int i = 0; i < N; i++)
                for (int j = 0; j < K; j++)
                    bt[(size_t)j * N + i] = B[(size_t)i * ldb + j];
            int ok = xs_nn(M, N, K, A, lda, bt, N, beta, C, ldc, small ? 1 : nt);
            mf_free(bt);
            if (ok)
                return;
        }
        if (!ta && !tb && (beta == 0.0f || beta == 1.0f) &&
            xs_nn(M, N, K, A, lda, B, ldb, beta, C, ldc, small ? 1 : nt))
            return;
        /* weight gradients: M, N the (small) weight shape, K the batch's rows */
        if (ta && beta == 1.0f && xs_tn_acc(M, N, K, A, lda, B, ldb, C, ldc, small ? 1 : nt))
            return;
    }
    if ((double)M * N * K < SPLIT_MIN_FLOPS) {
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* the longer side of C cut into blocks of rows of op(A) or columns of
     * op(B), as many calls whatever the thread count: OpenBLAS
     * picks its kernel by shape, so blocks that followed the thread count
     * would give other bits with 1 thread than with 2 (deterministic mode) */
    int by_rows = M >= N;
    int len = by_rows ? M : N;
    /* up to SPLIT_MAX blocks of at least SPLIT_BLOCK, a multiple of 16: a
     * function of the shape only */
    int blocks = (len + SPLIT_BLOCK - 1) / SPLIT_BLOCK;
    if (blocks > SPLIT_MAX)
        blocks = SPLIT_MAX;
    int bs = ((len + blocks - 1) / blocks + 15) / 16 * 16;
    blocks = (len + bs - 1) / bs;
    if (nt > blocks)
        nt = blocks;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int bi = 0; bi < blocks; bi++) {
        int lo = bi * bs, hi = lo + bs < len ? lo + bs : len;
        if (by_rows) {
            const float *a = ta ? A + lo : A + (size_t)lo * lda;
            cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
        } else {
            const float *b = tb ? B + (size_t)lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
        }
    }
}

static int num_threads = 0;

void mf_set_num_threads(int n)
{
    MF_ASSERT(n > 0);
    num_threads = n;
    pthread_once(&blas_single_once, blas_single); /* before any product, outside parallel regions */
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
    for (int r = 0; r < reps + 1; r++) { /* the first run warms the caches and thread pools up */
        double t0 = omp_get_wtime();
        if (via_mf)
            mf_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double s = omp_get_wtime() - t0;
        if (r > 0 && s > 0.0 && 2.0 * n * (double)n * n / s * 1e-9 > best)
            best = 2.0 * n * (double)n * n / s * 1e-9;
    }
    mf_set_num_threads(keep); /* OpenBLAS single-threaded again, as mf_sgemm needs */
    mf_free(a);
    mf_free(b);
    mf_free(c);
    return best;
}
