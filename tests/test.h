/* test.h: the tiny test helper (Redis' testhelp.h style). Checks record file:line
 * and keep going; `return mf_test_report();` ends main with a real exit status. */
#ifndef MF_TEST_H
#define MF_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int mf_test_checks, mf_test_failures;

#define MF_CHECK(cond)                                                               \
    do {                                                                             \
        mf_test_checks++;                                                            \
        if (!(cond)) {                                                               \
            mf_test_failures++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define MF_CHECK_MSG(cond, ...)                                                      \
    do {                                                                             \
        mf_test_checks++;                                                            \
        if (!(cond)) {                                                               \
            mf_test_failures++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

#define MF_CHECK_NEAR(a, b, tol)                                                                                    \
    do {                                                                                                            \
        double mf_a_ = (double)(a), mf_b_ = (double)(b);                                                            \
        mf_test_checks++;                                                                                           \
        if (!(fabs(mf_a_ - mf_b_) <= (tol))) {                                                                      \
            mf_test_failures++;                                                                                     \
            fprintf(stderr, "%s:%d: %s = %.9g, %s = %.9g, |diff| %.3g > %.3g\n", __FILE__, __LINE__, #a, mf_a_, #b, \
                    mf_b_, fabs(mf_a_ - mf_b_), (double)(tol));                                                     \
        }                                                                                                           \
    } while (0)

/* A scratch directory of the test program's own: /tmp/mf_<name>_XXXXXX,
 * written into dir (n bytes); the program exits if it cannot be made. */
static inline void mf_test_dir_make(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/mf_%s_XXXXXX", name);
    if (!mkdtemp(dir)) {
        perror(dir);
        exit(1);
    }
}

/* Removes it with all it holds; failing to is a failed check. */
static inline void mf_test_dir_remove(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    MF_CHECK_MSG(system(cmd) == 0, "could not remove %s", dir);
}

/* A test that ran no check proves nothing: it fails. */
static inline int mf_test_report(void)
{
    if (mf_test_checks == 0) {
        fprintf(stderr, "no check ran: the test proves nothing\n");
        return 1;
    }
    if (mf_test_failures)
        fprintf(stderr, "%d of %d checks failed\n", mf_test_failures, mf_test_checks);
    else
        printf("%d checks passed\n", mf_test_checks);
    return mf_test_failures ? 1 : 0;
}
#endif
