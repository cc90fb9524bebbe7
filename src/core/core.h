/* core.h: internal error, logging and assertion machinery shared by every module.
 * Not installed: include/ holds only what users may call. */
#ifndef MF_CORE_H
#define MF_CORE_H
#include <stdarg.h>
#include <stddef.h>
#include "mpifit/status.h"
#include "mpifit/tensor.h"
#include "mpifit/rng.h"

#if defined(__GNUC__)
#define MF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MF_NORETURN __attribute__((noreturn))
#else
#define MF_PRINTF(a, b)
#define MF_NORETURN
#endif

/* Run-time dispatch for the memory-bound elementwise kernels: GCC compiles
 * the function once per target and the dynamic loader picks the best one the
 * CPU has (an ifunc), so the default portable build uses AVX-512 or AVX2
 * where they exist. ISO C mode (-std=c11) keeps FMA contraction off, so
 * every clone rounds exactly as the baseline does: results do not depend on
 * the CPU. -DMF_NO_CLONES turns it off. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(MF_NO_CLONES)
#define MF_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MF_SIMD_CLONES
#endif

/* A kernel body instantiated with constant arguments (e.g. a channel
 * multiplier of 1) by small wrappers: inlined into each, so each is compiled
 * for its constants (and for each MF_SIMD_CLONES target of the wrapper). */
#if defined(__GNUC__)
#define MF_ALWAYS_INLINE __attribute__((always_inline))
#else
#define MF_ALWAYS_INLINE
#endif

/* Tier 1: a broken invariant is a bug. Always on (kept in Release, unlike
 * assert()); prints "[mpifit rank r/w] file:line: assertion failed: cond" and
 * ends the whole job (MPI_Abort when MPI is up, else abort()). */
#define MF_ASSERT(cond)                                                  \
    do {                                                                 \
        if (!(cond))                                                     \
            mf_panic(__FILE__, __LINE__, "assertion failed: %s", #cond); \
    } while (0)
MF_NORETURN MF_PRINTF(3, 4) void mf_panic(const char *file, int line, const char *fmt, ...);

/* Tier 2: record a message for mf_last_error() and return s (use: return mf_fail(...)). */
MF_PRINTF(2, 3) mf_status mf_fail(mf_status s, const char *fmt, ...);
/* Propagate a failure from a call returning mf_status. */
#define MF_TRY(expr)                   \
    do {                               \
        mf_status mf_try_s_ = (expr);  \
        if (mf_try_s_ != MF_STATUS_OK) \
            return mf_try_s_;          \
    } while (0)

/* How the job ends on panic: the MPI module installs MPI_Abort here. */
typedef void (*mf_abort_fn)(int code);
void mf_set_abort_handler(mf_abort_fn fn);

/* Rank-aware logging: messages carry "[mpifit rank r/w]" when world > 1.
 * mf_log_info prints on rank 0 only (the rank-0 rule); mf_log_warn and
 * mf_log_error print on every rank, to stderr. */
void mf_log_set_rank(int rank, int world);
int mf_log_rank(void);
int mf_log_world(void);
MF_PRINTF(1, 2) void mf_log_info(const char *fmt, ...);
MF_PRINTF(1, 2) void mf_log_all(const char *fmt, ...);
MF_PRINTF(1, 2) void mf_log_warn(const char *fmt, ...);
MF_PRINTF(1, 2) void mf_log_error(const char *fmt, ...);

/* Make room for one more element in a growable array: if n == *cap, double
 * the capacity (starting at `first`), keeping the n elements. Returns the
 * (possibly new) array. */
void *mf_grow(void *array, int n, int *cap, int first, size_t elem);

/* mf_alloc without the zero-fill, for buffers written before they are read
 * (activation arenas): their pages stay untouched until used. mf_free it. */
#define mf_alloc_uninit(bytes) mf_alloc_uninit_at((bytes), __FILE__, __LINE__)
void *mf_alloc_uninit_at(size_t bytes, const char *file, int line);

/* Test hook (os.c), for the fault tests only: with MF_FAULT_INJECT set to
 * "POINT:N" or "POINT:N:RANK", true exactly once, the Nth time this process
 * passes POINT (and only on rank RANK, when given). The points:
 * kill_in_checkpoint, usr1_in_checkpoint (half-way through writing a ckpt-*.h5),
 * kill_in_allreduce (gradient buckets posted, not yet complete), nan_loss (the
 * loss and its gradient of a train step), usr1_in_validation (a validation
 * batch). Unset, it costs one getenv per pass. */
int mf_fault_hit(const char *point);
/* Seconds on a monotonic clock (os.c). */
double mf_now(void);
/* mkdir -p: every missing directory of path is created, existing ones are
 * fine; MF_STATUS_IO naming the component that could not be made (os.c). */
mf_status mf_mkdir_p(const char *path);
/* path = buf (len bytes), written to path.tmp and renamed over path, so an
 * interrupted run never leaves a half-written file under the real name. No
 * fsync: that guards against a power cut, at a cost per file (checkpoints,
 * which need it, go through mf_commit_file). */
mf_status mf_write_file(const char *path, const uint8_t *buf, size_t len);

/* A copy of s from mf_alloc (mf_free it). */
char *mf_strdup(const char *s);

/* Safe string copy: always NUL-terminates, returns 0 if src did not fit. */
int mf_strlcpy(char *dst, const char *src, size_t n);
#endif
