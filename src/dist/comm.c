/* comm.c: everything that talks to MPI (see mpifit/comm.h). The communicator
 * is a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a failing call
 * becomes an mf_status carrying MPI_Error_string's text instead of killing the
 * job without a word. */
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mpifit/comm.h"
#include "mpifit/model.h"
#include "comm.h"
#include "half.h"
#include "../core/trace.h"
#include "../core/core.h"

struct mf_comm {
    MPI_Comm comm, local;
    MPI_Comm roll; /* the watchdog's roll call (wait_watched), apart from the collectives */
    MPI_Comm gather; /* the compressed buckets' allgathers, apart from their all-to-alls (advance_bucket) */
    long long seq; /* watched collectives so far: the same count on every rank */
    atomic_llong grad_bytes; /* payload of the gradient exchange so far (mf_comm_grad_bytes) */
    int rank, size, local_rank, local_size;
    int started_mpi;
    int thread_level; /* what MPI_Init_thread provided */
    /* the watchdog (mf_comm_set_timeout): a thread that ends the job when
     * one blocking collective takes longer than `timeout` seconds */
    double timeout; /* 0: off */
    pthread_t dog;
    int dog_running;
    atomic_int dog_stop;
    atomic_llong since_ms; /* when the collective under way began, 0: none */
    double backstop; /* the thread's limit: the roll call's, plus a margin */
    pthread_mutex_t text_lock; /* guards what and where */
    char what[96]; /* the collective under way */
    char where[96]; /* the caller's context: epoch, step */
};

static long long now_ms(void) { return (long long)(mf_now() * 1000.0); }

/* Around every blocking collective: what is waited for, since when. */
static void watch_begin(mf_comm *c, const char *what)
{
    c->seq++;
    if (c->timeout <= 0.0)
        return;
    pthread_mutex_lock(&c->text_lock);
    mf_strlcpy(c->what, what, sizeof c->what);
    pthread_mutex_unlock(&c->text_lock);
    atomic_store(&c->since_ms, now_ms());
}

static void watch_end(mf_comm *c) { atomic_store(&c->since_ms, 0); }

/* How long a rank that timed out listens for the others' roll-call answers. */
static double roll_grace(const mf_comm *c) { return c->timeout < 6.0 ? c->timeout / 2.0 + 0.5 : 3.0; }

/* "1, 3, 5": the ranks r with mark[r] == want (at most n bytes). */
static void rank_list(const mf_comm *c, const signed char *mark, int want, char *buf, size_t n)
{
    size_t used = 0;
    int shown = 0, total = 0;
    buf[0] = '\0';
    for (int r = 0; r < c->size; r++) {
        if (mark[r] != want)
            continue;
        total++;
        if (used + 16 < n && shown < 32) {
            used += (size_t)snprintf(buf + used, n - used, "%s%d", shown ? ", " : "", r);
            shown++;
        }
    }
    if (total > shown && used + 24 < n)
        snprintf(buf + used, n - used, " and %d more", total - shown);
}

/* The collective under way has not completed in time. Ask who is here: tell
 * every other rank, on a communicator of its own, which collective (by its
 * number) this rank waits in, and listen for their word for a few seconds.
 * A rank that waits in the same one answers the same; one that is stopped,
 * hung in its own work or dead says nothing; one in another collective names
 * it. Then say so and end the job. Only the thread that calls MPI runs this
 * (the library is initialised MPI_THREAD_FUNNELED). Returns if the
 * collective completes meanwhile: then a rank was late, not lost. */
static void roll_call(mf_comm *c, MPI_Request *req)
{
    long long mine = c->seq;
    for (int r = 0; r < c->size; r++) {
        MPI_Request s;
        if (r != c->rank && MPI_Isend(&mine, 1, MPI_LONG_LONG, r, 0, c->roll, &s) == MPI_SUCCESS)
            MPI_Request_free(&s); /* a small message: it leaves whether or not r ever takes it */
    }
    signed char *mark = calloc((size_t)c->size, 1); /* 0 silent, 1 here, 2 elsewhere */
    long long *theirs = calloc((size_t)c->size, sizeof *theirs);
    if (!mark || !theirs)
        _exit(124);
    mark[c->rank] = 1;
    double until = mf_now() + roll_grace(c);
    while (mf_now() < until) {
        int done = 0, flag = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
            free(mark);
            free(theirs);
            return;
        }
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, 0, c->roll, &flag, &st) == MPI_SUCCESS && flag) {
            long long v = 0;
            MPI_Recv(&v, 1, MPI_LONG_LONG, st.MPI_SOURCE, 0, c->roll, MPI_STATUS_IGNORE);
            if (v >= mine) { /* older words are from an earlier late collective */
                mark[st.MPI_SOURCE] = v == mine ? 1 : 2;
                theirs[st.MPI_SOURCE] = v;
            }
        }
    }
    char what[96], where[96], silent[256], here[256], other[256] = "";
    pthread_mutex_lock(&c->text_lock);
    mf_strlcpy(what, c->what, sizeof what);
    mf_strlcpy(where, c->where, sizeof where);
    pthread_mutex_unlock(&c->text_lock);
    rank_list(c, mark, 0, silent, sizeof silent);
    rank_list(c, mark, 1, here, sizeof here);
    for (int r = 0; r < c->size; r++)
        if (mark[r] == 2 && strlen(other) + 64 < sizeof other)
            snprintf(other + strlen(other), sizeof other - strlen(other), "; rank %d is in collective #%lld", r,
                     theirs[r]);
    fprintf(stderr,
            "[mpifit rank %d/%d] watchdog: %s%s%s (collective #%lld) has not completed after %.0f s ([dist] timeout); "
            "did not arrive: rank%s %s (no word in %.0f s: stopped, hung or dead); waiting here too: %s%s; "
            "ending the job\n",
            c->rank, c->size, what, where[0] ? " at " : "", where, mine, c->timeout, strchr(silent, ',') ? "s" : "",
            silent[0] ? silent : "none", roll_grace(c), here, other);
    fflush(stderr);
    free(mark);
    free(theirs);
    MPI_Abort(c->comm, 124);
    _exit(124);
}

/* Wait for a non-blocking collective. With the watchdog on, poll it (Open MPI's
 * MPI_Wait polls too), so that past the timeout this thread can hold the roll
 * call. */
static int wait_watched(mf_comm *c, MPI_Request *req)
{
    if (c->timeout <= 0.0)
        return MPI_Wait(req, MPI_STATUS_IGNORE);
    long long limit = (long long)(c->timeout * 1000.0), since = atomic_load(&c->since_ms);
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done)
            return rc;
        if (since && now_ms() - since > limit) {
            roll_call(c, req); /* returns only if the collective completed meanwhile */
            return MPI_SUCCESS;
        }
    }
}

/* The watchdog thread: the backstop for a rank that stops inside the MPI
 * library itself (the roll call needs this thread's MPI_Test to return). It
 * fires a margin after the roll call would have ended. MPI_Abort from this
 * thread: the standard asks for MPI_THREAD_MULTIPLE, which would put every MPI
 * call of the training loop behind a lock; Open MPI's MPI_Abort goes through
 * its runtime and works from any thread. Should it return, the process exits
 * anyway. */
static void *watchdog(void *arg)
{
    mf_comm *c = arg;
    long long limit = (long long)(c->backstop * 1000.0);
    /* a tenth of a second between looks: cheap, and mf_comm_free need not
     * wait long for the thread to notice it should stop */
    long long nap_us = limit / 4 * 1000;
    if (nap_us > 100000)
        nap_us = 100000;
    if (nap_us < 10000)
        nap_us = 10000;
    while (!atomic_load(&c->dog_stop)) {
        struct timespec nap = {(time_t)(nap_us / 1000000), (long)(nap_us % 1000000) * 1000};
        nanosleep(&nap, NULL);
        long long since = atomic_load(&c->since_ms);
        if (!since || now_ms() - since <= limit)
            continue;
        char what[96], where[96];
        pthread_mutex_lock(&c->text_lock);
        mf_strlcpy(what, c->what, sizeof what);
        mf_strlcpy(where, c->where, sizeof where);
        pthread_mutex_unlock(&c->text_lock);
        fprintf(stderr,
                "[mpifit rank %d/%d] watchdog: %s%s%s has not completed after %.0f s ([dist] timeout) and this rank "
                "is stuck inside the MPI library; ending the job\n",
                c->rank, c->size, what, where[0] ? " at " : "", where, c->backstop);
        fflush(stderr);
        MPI_Abort(c->comm, 124);
        _exit(124);
    }
    return NULL;
}

void mf_comm_set_timeout(mf_comm *c, double seconds)
{
    if (c->dog_running) {
        atomic_store(&c->dog_stop, 1);
        pthread_join(c->dog, NULL);
        c->dog_running = 0;
    }
    c->timeout = seconds > 0.0 && c->size > 1 ? seconds : 0.0;
    c->backstop = c->timeout + roll_grace(c) + 10.0;
    atomic_store(&c->since_ms, 0);
    if (c->timeout > 0.0) {
        atomic_store(&c->dog_stop, 0);
        c->dog_running = pthread_create(&c->dog, NULL, watchdog, c) == 0;
        if (!c->dog_running)
            mf_log_warn("[dist] timeout: cannot start the watchdog thread; a stuck rank will hang the job");
    }
}

void mf_comm_set_context(mf_comm *c, const char *fmt, ...)
{
    if (!c || c->timeout <= 0.0)
        return;
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->text_lock);
    mf_strlcpy(c->where, buf, sizeof c->where);
    pthread_mutex_unlock(&c->text_lock);
}

/* MF_MPI(call): on failure, return an mf_status naming the call and MPI's reason. */
#define MF_MPI(call)                        \
    do {                                    \
        int mf_rc_ = (call);                \
        if (mf_rc_ != MPI_SUCCESS)          \
            return mpi_fail(mf_rc_, #call); \
    } while (0)

static mf_status mpi_fail(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return mf_fail(MF_STATUS_MPI, "rank %d: %s failed: %s", mf_log_rank(), what, text);
}

const char *mf_comm_library_version(void)
{
    static char buf[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(buf, &len);
    /* Open MPI's string runs on with a package description and a newline */
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    char *comma = strchr(buf, ',');
    if (comma)
        *comma = '\0';
    return buf;
}

static void abort_world(int code)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down)
        MPI_Abort(MPI_COMM_WORLD, code);
}

mf_status mf_comm_create(int *argc, char ***argv, mf_comm **out)
{
    *out = NULL;
    int up = 0, provided = 0, started = 0;
    MPI_Initialized(&up);
    if (!up) {
#ifdef OPEN_MPI
        /* Open MPI's non-blocking allreduce (libnbc) picks a binomial tree
         * below 4 ranks: a reduce to rank 0 and a broadcast back, one after
         * the other, so each link carries the whole gradient twice in turn.
         * The ring sends halves both ways at once: on 2 nodes at 1 Gbit/s it
         * took the 9 MB of MobileNetV2's gradients from 150 to 80 ms (the
         * alpha-beta bound, 75). Ask for it unless the user chose. */
        if (!getenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm"))
            setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
#endif
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mf_fail(MF_STATUS_MPI, "MPI_Init_thread failed (error %d)", rc);
        started = 1;
    }
    mf_comm *c = mf_alloc(sizeof *c);
    c->started_mpi = started;
    MPI_Query_thread(&c->thread_level);
    if (c->thread_level < MPI_THREAD_FUNNELED)
        mf_log_warn("MPI provides thread level %d, below MPI_THREAD_FUNNELED: mpifit's OpenMP threads never call MPI, "
                    "but the MPI library may not expect them",
                    c->thread_level);
    pthread_mutex_init(&c->text_lock, NULL);
    MF_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c->comm));
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MF_MPI(MPI_Comm_dup(c->comm, &c->roll));
    MF_MPI(MPI_Comm_dup(c->comm, &c->gather));
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    MF_MPI(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->local));
    MPI_Comm_rank(c->local, &c->local_rank);
    MPI_Comm_size(c->local, &c->local_size);
    mf_log_set_rank(c->rank, c->size);
    mf_set_abort_handler(abort_world);
    *out = c;
    return MF_STATUS_OK;
}

void mf_comm_free(mf_comm *c)
{
    if (!c)
        return;
    mf_comm_set_timeout(c, 0.0);
    pthread_mutex_destroy(&c->text_lock);
    MPI_Comm_free(&c->local);
    MPI_Comm_free(&c->roll);
    MPI_Comm_free(&c->gather);
    MPI_Comm_free(&c->comm);
    int down = 0;
    MPI_Finalized(&down);
    if (c->started_mpi && !down)
        MPI_Finalize();
    mf_set_abort_handler(NULL);
    mf_free(c);
}

int mf_comm_rank(const mf_comm *c) { return c ? c->rank : 0; }
int mf_comm_size(const mf_comm *c) { return c ? c->size : 1; }
int mf_comm_local_size(const mf_comm *c) { return c ? c->local_size : 1; }
int mf_comm_local_rank(const mf_comm *c) { return c ? c->local_rank : 0; }

/* MPI counts are int: move large buffers in pieces. */
#define CHUNK ((size_t)1 << 28)
#define AVG_CHUNK ((size_t)1 << 20) /* doubles of the average's buffer: 8 MiB */

mf_status mf_comm_bcast_floats(mf_comm *c, float *buf, size_t n, int root)
{
    for (size_t off = 0; off < n; off += CHUNK) {
        int k = (int)(n - off < CHUNK ? n - off : CHUNK);
        watch_begin(c, "a broadcast of floats");
        MPI_Request req;
        int rc = MPI_Ibcast(buf + off, k, MPI_FLOAT, root, c->comm, &req);
        if (rc == MPI_SUCCESS)
            rc = wait_watched(c, &req);
        watch_end(c);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Bcast");
    }
    return MF_STATUS_OK;
}

mf_status mf_comm_bcast_bytes(mf_comm *c, void *buf, size_t n, int root)
{
    for (size_t off = 0; off < n; off += CHUNK) {
        int k = (int)(n - off < CHUNK ? n - off : CHUNK);
        watch_begin(c, "a broadcast");
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off, k, MPI_BYTE, root, c->comm, &req);
        if (rc == MPI_SUCCESS)
            rc = wait_watched(c, &req);
        watch_end(c);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Bcast");
    }
    return MF_STATUS_OK;
}

mf_status mf_comm_allgather_bytes(mf_comm *c, const void *mine, size_t n, void *all)
{
    MF_ASSERT(n < (size_t)1 << 30);
    watch_begin(c, "an allgather");
    MPI_Request req;
    int rc = MPI_Iallgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, c->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allgather");
    return MF_STATUS_OK;
}

mf_status mf_comm_allreduce_sum(mf_comm *c, double *buf, int n)
{
    watch_begin(c, "an allreduce (metrics or BatchNorm statistics)");
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, c->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce");
    return MF_STATUS_OK;
}

/* Synchronized BatchNorm: the model's statistics reduction is an allreduce
 * over comm. Defined here so that the layers and the model stay free of MPI. */
static mf_status sum_over_comm(void *user, double *buf, int n) { return mf_comm_allreduce_sum(user, buf, n); }

void mf_model_set_sync_batchnorm(mf_model *m, mf_comm *comm)
{
    mf_model_set_stat_reduce(m, comm ? sum_over_comm : NULL, comm);
}

mf_status mf_comm_allreduce_min_max(mf_comm *c, int64_t *min_buf, int64_t *max_buf, int n)
{
    watch_begin(c, "a min/max allreduce");
    MPI_Request req[2];
    int rc = MPI_Iallreduce(MPI_IN_PLACE, min_buf, n, MPI_INT64_T, MPI_MIN, c->comm, &req[0]);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req[0]);
    if (rc == MPI_SUCCESS)
        rc = MPI_Iallreduce(MPI_IN_PLACE, max_buf, n, MPI_INT64_T, MPI_MAX, c->comm, &req[1]);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req[1]);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce (min/max)");
    return MF_STATUS_OK;
}

mf_status mf_comm_bench(mf_comm *c, size_t floats, int reps, double *pingpong, double *allreduce)
{
    if (c->size < 2)
        return mf_fail(MF_STATUS_INVALID, "mpifit bench --comm needs 2 or more ranks, got %d", c->size);
    char byte = 0;
    float *buf = mf_alloc((floats ? floats : 1) * sizeof *buf);
    for (size_t i = 0; i < floats; i++)
        buf[i] = 1.0f;
    int rc = MPI_Barrier(c->comm);
    /* 1-byte ping-pong between ranks 0 and 1: 100 round trips per repetition */
    for (int r = 0; r < reps && rc == MPI_SUCCESS; r++) {
        double t0 = MPI_Wtime();
        for (int k = 0; k < 100 && rc == MPI_SUCCESS; k++) {
            if (c->rank == 0) {
                rc = MPI_Send(&byte, 1, MPI_CHAR, 1, 7, c->comm);
                if (rc == MPI_SUCCESS)
                    rc = MPI_Recv(&byte, 1, MPI_CHAR, 1, 7, c->comm, MPI_STATUS_IGNORE);
            } else if (c->rank == 1) {
                rc = MPI_Recv(&byte, 1, MPI_CHAR, 0, 7, c->comm, MPI_STATUS_IGNORE);
                if (rc == MPI_SUCCESS)
                    rc = MPI_Send(&byte, 1, MPI_CHAR, 0, 7, c->comm);
            }
        }
        pingpong[r] = (MPI_Wtime() - t0) / 200.0;
    }
    if (rc == MPI_SUCCESS)
        rc = MPI_Barrier(c->comm);
    /* allreduce of `floats` floats, as a gradient is (MPI_SUM in place) */
    for (int r = 0; r < reps && rc == MPI_SUCCESS; r++) {
        rc = MPI_Barrier(c->comm);
        double t0 = MPI_Wtime();
        if (rc == MPI_SUCCESS)
            rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)floats, MPI_FLOAT, MPI_SUM, c->comm);
        allreduce[r] = MPI_Wtime() - t0;
    }
    mf_free(buf);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "bench --comm");
    return MF_STATUS_OK;
}

/* One timed pass of the overlap benchmark: `chunks` calls of work(arg), with
 * an MPI_Iallreduce of buf in flight and an MPI_Test after every call when
 * `beside` (as fit's overlap tests after every layer's backward); then the
 * wait for the exchange. compute and after in seconds. */
static int overlap_pass(mf_comm *c, float *buf, size_t floats, int chunks, int beside, void (*work)(void *), void *arg,
                        double *compute, double *after)
{
    MPI_Request req = MPI_REQUEST_NULL;
    int rc = MPI_Barrier(c->comm);
    double t0 = MPI_Wtime();
    if (rc == MPI_SUCCESS && beside)
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)floats, MPI_FLOAT, MPI_SUM, c->comm, &req);
    for (int k = 0; k < chunks && rc == MPI_SUCCESS; k++) {
        work(arg);
        int done = 0;
        if (beside && req != MPI_REQUEST_NULL)
            rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    }
    double t1 = MPI_Wtime();
    if (rc == MPI_SUCCESS && req != MPI_REQUEST_NULL)
        rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
    *compute = t1 - t0;
    *after = MPI_Wtime() - t1;
    return rc;
}

mf_status mf_comm_bench_overlap(mf_comm *c, size_t floats, int reps, int chunks, void (*work)(void *), void *arg,
                                double *exchange, double *alone, double *beside, double *after)
{
    if (c->size < 2)
        return mf_fail(MF_STATUS_INVALID, "mpifit bench --comm needs 2 or more ranks, got %d", c->size);
    if (floats > (size_t)INT32_MAX || chunks < 1 || reps < 1)
        return mf_fail(MF_STATUS_INVALID, "bench --comm overlap: %zu floats, %d chunks, %d repetitions", floats, chunks,
                       reps);
    float *buf = mf_alloc((floats ? floats : 1) * sizeof *buf);
    for (size_t i = 0; i < floats; i++)
        buf[i] = 1.0f;
    int rc = MPI_SUCCESS;
    double unused;
    /* one unmeasured round of each, then the three alternated: the exchange
     * alone (the non-blocking ring fit uses, waited for at once), the compute
     * alone, the compute with the exchange beside it */
    for (int r = -1; r < reps && rc == MPI_SUCCESS; r++) {
        double e = 0, a = 0, b = 0, w = 0;
        rc = overlap_pass(c, buf, floats, 0, 1, work, arg, &unused, &e);
        if (rc == MPI_SUCCESS)
            rc = overlap_pass(c, buf, floats, chunks, 0, work, arg, &a, &unused);
        if (rc == MPI_SUCCESS)
            rc = overlap_pass(c, buf, floats, chunks, 1, work, arg, &b, &w);
        if (r >= 0 && rc == MPI_SUCCESS) {
            exchange[r] = e;
            alone[r] = a;
            beside[r] = b;
            after[r] = w;
        }
    }
    mf_free(buf);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "bench --comm (overlap)");
    return MF_STATUS_OK;
}

long long mf_comm_grad_bytes(const mf_comm *c) { return c ? atomic_load(&((mf_comm *)c)->grad_bytes) : 0; }

void mf_comm_count_grad_bytes(mf_comm *c, size_t n)
{
    if (c)
        atomic_fetch_add(&c->grad_bytes, (long long)n);
}

mf_status mf_comm_allreduce_max_f64(mf_comm *c, double *v)
{
    watch_begin(c, "a max allreduce (deterministic mode's exponent)");
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_DOUBLE, MPI_MAX, c->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce (max)");
    return MF_STATUS_OK;
}

mf_status mf_comm_allreduce_sum_i64(mf_comm *c, int64_t *buf, size_t n)
{
    const size_t piece = (size_t)1 << 28; /* MPI counts are int */
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += piece) {
        int k = (int)(n - off < piece ? n - off : piece);
        watch_begin(c, "the gradient allreduce (deterministic mode, int64)");
        atomic_fetch_add(&c->grad_bytes, (long long)((size_t)k * sizeof(int64_t)));
        MPI_Request req;
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf + off, k, MPI_INT64_T, MPI_SUM, c->comm, &req);
        if (rc == MPI_SUCCESS)
            rc = wait_watched(c, &req);
        watch_end(c);
    }
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce (int64 sum)");
    return MF_STATUS_OK;
}

mf_status mf_comm_average_floats(mf_comm *c, float *buf, size_t n)
{
    if (c->size == 1)
        return MF_STATUS_OK;
    /* summed and divided in double: N copies of one float add up exactly
     * (24 + log2 N bits), so ranks that hold the same value get exactly that
     * value back, whatever their number (in float, (a + a + a) / 3 need not be
     * a): evaluation on N ranks then uses the very model of one rank. With 2
     * ranks the result is what the float sum gave (two floats add exactly in
     * double; halving commutes with rounding outside the subnormal range). */
    size_t chunk = n < AVG_CHUNK ? n : AVG_CHUNK;
    double *d = mf_alloc_uninit((chunk ? chunk : 1) * sizeof *d);
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += AVG_CHUNK) {
        int k = (int)(n - off < AVG_CHUNK ? n - off : AVG_CHUNK);
        for (int i = 0; i < k; i++)
            d[i] = buf[off + (size_t)i];
        watch_begin(c, "the BatchNorm statistics average");
        MPI_Request req;
        rc = MPI_Iallreduce(MPI_IN_PLACE, d, k, MPI_DOUBLE, MPI_SUM, c->comm, &req);
        if (rc == MPI_SUCCESS)
            rc = wait_watched(c, &req);
        watch_end(c);
        for (int i = 0; rc == MPI_SUCCESS && i < k; i++)
            buf[off + (size_t)i] = (float)(d[i] / c->size);
    }
    mf_free(d);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce (average)");
    return MF_STATUS_OK;
}

mf_status mf_comm_agree(mf_comm *c, mf_status local)
{
    /* the lowest failing rank, or size if none: one MIN allreduce on the
     * success path, which is the only one that runs every step */
    int mine = local == MF_STATUS_OK ? c->size : c->rank, first = c->size;
    watch_begin(c, "the step-boundary agreement");
    MPI_Request req;
    int rc = MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce (agreement)");
    if (first == c->size)
        return MF_STATUS_OK;
    /* that rank's status and message, to everyone */
    struct {
        int status;
        char msg[1000];
    } m;
    memset(&m, 0, sizeof m);
    if (c->rank == first) {
        m.status = (int)local;
        mf_strlcpy(m.msg, mf_last_error(), sizeof m.msg);
    }
    watch_begin(c, "the failing rank's message");
    rc = MPI_Ibcast(&m, (int)sizeof m, MPI_BYTE, first, c->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_watched(c, &req);
    watch_end(c);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Bcast (agreement)");
    return mf_fail((mf_status)m.status, "rank %d: %s", first, m.msg);
}

/* FNV-1a over the bytes: equal buffers, equal hashes; a single flipped bit
 * changes it. */
static uint64_t fnv1a(const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

mf_status mf_comm_identical(mf_comm *c, const void *buf, size_t bytes, int *identical)
{
    int64_t h = (int64_t)fnv1a(buf, bytes), lo = h, hi = h;
    MF_TRY(mf_comm_allreduce_min_max(c, &lo, &hi, 1));
    *identical = lo == hi;
    return MF_STATUS_OK;
}

void mf_comm_abort(mf_comm *c, int code, const char *msg)
{
    fprintf(stderr, "[mpifit rank %d/%d] %s; stopping every rank\n", c->rank, c->size, msg);
    fflush(stderr);
    MPI_Abort(c->comm, code);
}

/* ---- bucketed gradient allreduce -------------------------------------------- */

/* One bucket: a contiguous range of the gradient buffer, reduced as a unit.
 * Uncompressed, one MPI_Iallreduce of floats. Compressed ([dist] compress),
 * two exchanges of 16-bit values: an all-to-all hands rank r every rank's
 * r-th chunk (EXCHANGE), r sums its chunk in float and rounds it once with
 * its own error feedback (mf_half_reduce), and an allgather hands every rank
 * every reduced chunk (GATHER). The bytes on the wire are a ring allreduce's,
 * in 16 bits; no partial sum is ever rounded, and the sum's rounding is fed
 * back as well as each sender's. */
enum { B_IDLE, B_EXCHANGE, B_REDUCED, B_GATHER, B_DONE };

typedef struct bucket {
    size_t lo, hi; /* float range of the gradient buffer */
    int pending; /* parameter tensors not yet produced by backward */
    int phase; /* B_IDLE .. B_DONE; B_REDUCED: summed, its allgather not started */
    MPI_Request req;
    double t0; /* when its exchange started (the timeline) */
    /* compressed: chunks of c values (p * c >= hi - lo); wire holds this
     * rank's p outgoing chunks, then the gathered result; parts the p
     * incoming pieces of this rank's chunk; own its reduced chunk and
     * own_resid what rounding it lost */
    size_t c;
    uint16_t *wire, *parts, *own;
    float *own_resid;
} bucket;

/* The timeline's span of bucket i's exchange, from its start to now. */
static void trace_bucket(const bucket *b, int i, int n)
{
    if (!mf_trace_on())
        return;
    char name[64];
    snprintf(name, sizeof name, "bucket %d/%d (%zu KiB)", i + 1, n, (b->hi - b->lo) * sizeof(float) / 1024);
    mf_trace_span("allreduce", name, MF_TRACE_COMM, b->t0, mf_now());
}

struct mf_grad_sync {
    mf_comm *c;
    mf_model *m;
    int overlap;
    bucket *b;
    int n;
    int next; /* buckets start in index order: the same on every rank */
    int next_gather; /* compressed: allgathers start in index order too */
    int *layer_first, *layer_count; /* per layer: its tensors' bucket indices */
    int *tensor_bucket; /* per layer tensor slot in layer order */
    int n_layers;
    double wait;
    int active; /* begun, not finished */
    int error; /* MPI error of a non-blocking start, reported by finish */
    int synced_backwards; /* backward passes this step with sync on */
    int misuse; /* a backward began after one with sync on: finish fails */
    /* [dist] compress: resid keeps what each sender's rounding lost, indexed
     * like the gradient buffer up to bucket 0's end; arena holds the buckets'
     * 16-bit buffers and own_arena their owners' remainders. NULL when off. */
    mf_compress compress;
    float *resid, *own_arena;
    uint16_t *arena;
};

mf_grad_sync *mf_grad_sync_create(mf_comm *c, mf_model *m, size_t bucket_bytes, int overlap)
{
    mf_grad_sync *g = mf_alloc(sizeof *g);
    g->c = c;
    g->m = m;
    g->overlap = overlap;
    int nt = mf_model_num_param_tensors(m);
    g->n_layers = mf_model_num_layers(m);
    g->b = mf_alloc((size_t)(nt ? nt : 1) * sizeof *g->b);
    g->tensor_bucket = mf_alloc((size_t)(nt ? nt : 1) * sizeof *g->tensor_bucket);
    g->layer_first = mf_alloc((size_t)(g->n_layers ? g->n_layers : 1) * sizeof(int));
    g->layer_count = mf_alloc((size_t)(g->n_layers ? g->n_layers : 1) * sizeof(int));
    /* tensor t belongs to layer layer_of[t]; tensors are in layer order */
    int *layer_of = mf_alloc((size_t)(nt ? nt : 1) * sizeof(int));
    for (int t = 0, l = 0; t < nt; t++) {
        mf_param_info p = mf_model_param(m, t);
        while (strcmp(mf_layer_name(mf_model_layer(m, l)), p.layer) != 0)
            l++;
        layer_of[t] = l;
        if (g->layer_count[l]++ == 0)
            g->layer_first[l] = t;
    }
    /* walk the trainable tensors from the last: close a bucket when it is big
     * enough or the next tensor is not adjacent (a frozen or state tensor lies
     * between), so every bucket is one contiguous range */
    size_t cap = bucket_bytes / sizeof(float);
    if (cap == 0)
        cap = 1;
    for (int t = nt - 1; t >= 0; t--) {
        mf_param_info p = mf_model_param(m, t);
        g->tensor_bucket[t] = -1;
        if (!p.trainable)
            continue;
        size_t pad = MF_ALIGN / sizeof(float), end = p.offset + (p.numel + pad - 1) / pad * pad;
        bucket *cur = g->n ? &g->b[g->n - 1] : NULL;
        if (!cur || cur->lo != end || cur->hi - cur->lo >= cap) {
            cur = &g->b[g->n++];
            memset(cur, 0, sizeof *cur);
            cur->hi = end;
        }
        cur->lo = p.offset;
        g->tensor_bucket[t] = g->n - 1;
    }
    mf_free(layer_of);
    return g;
}

static void free_compression(mf_grad_sync *g)
{
    mf_free(g->resid);
    mf_free(g->own_arena);
    mf_free(g->arena);
    g->resid = g->own_arena = NULL;
    g->arena = NULL;
    g->compress = MF_COMPRESS_NONE;
}

mf_status mf_grad_sync_set_compress(mf_grad_sync *g, mf_compress mode)
{
    if (mode == g->compress)
        return MF_STATUS_OK;
    if (g->active)
        return mf_fail(MF_STATUS_INVALID, "gradient compression cannot change between begin and finish");
    if (mode != MF_COMPRESS_NONE && mode != MF_COMPRESS_FP16 && mode != MF_COMPRESS_BF16)
        return mf_fail(MF_STATUS_INVALID, "gradient compression: unknown mode %d", (int)mode);
    free_compression(g);
    if (mode == MF_COMPRESS_NONE || g->c->size == 1)
        return MF_STATUS_OK;
    size_t p = (size_t)g->c->size, end = g->n ? g->b[0].hi : 0; /* bucket 0 holds the last tensors */
    size_t halves = 0, owns = 0;
    for (int i = 0; i < g->n; i++) {
        bucket *b = &g->b[i];
        b->c = (b->hi - b->lo + p - 1) / p;
        halves += 2 * p * b->c + b->c;
        owns += b->c;
    }
    g->resid = mf_alloc((end ? end : 1) * sizeof *g->resid);
    memset(g->resid, 0, (end ? end : 1) * sizeof *g->resid);
    g->arena = mf_alloc((halves ? halves : 1) * sizeof *g->arena);
    g->own_arena = mf_alloc((owns ? owns : 1) * sizeof *g->own_arena);
    memset(g->own_arena, 0, (owns ? owns : 1) * sizeof *g->own_arena);
    for (int i = 0, h = 0, o = 0; i < g->n; i++) {
        bucket *b = &g->b[i];
        b->wire = g->arena + h;
        b->parts = b->wire + p * b->c;
        b->own = b->parts + p * b->c;
        b->own_resid = g->own_arena + o;
        h += (int)(2 * p * b->c + b->c);
        o += (int)b->c;
    }
    g->compress = mode;
    return MF_STATUS_OK;
}

void mf_grad_sync_free(mf_grad_sync *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        if (g->b[i].req != MPI_REQUEST_NULL && g->b[i].phase != B_IDLE)
            MPI_Wait(&g->b[i].req, MPI_STATUS_IGNORE);
    free_compression(g);
    mf_free(g->b);
    mf_free(g->tensor_bucket);
    mf_free(g->layer_first);
    mf_free(g->layer_count);
    mf_free(g);
}

int mf_grad_sync_num_buckets(const mf_grad_sync *g) { return g->n; }
double mf_grad_sync_wait_seconds(const mf_grad_sync *g) { return g->wait; }

void mf_grad_sync_begin(mf_grad_sync *g)
{
    for (int i = 0; i < g->n; i++) {
        g->b[i].pending = 0;
        g->b[i].phase = B_IDLE;
        g->b[i].req = MPI_REQUEST_NULL;
    }
    int nt = mf_model_num_param_tensors(g->m);
    for (int t = 0; t < nt; t++)
        if (g->tensor_bucket[t] >= 0)
            g->b[g->tensor_bucket[t]].pending++;
    g->next = g->next_gather = 0;
    g->active = 1;
    g->synced_backwards = 0;
    g->misuse = 0;
}

void mf_grad_sync_backward_begin(mf_grad_sync *g, int sync)
{
    if (!g->active)
        return;
    if (g->synced_backwards > 0 && !g->misuse) {
        /* A second pass would add into buffers that in-place allreduces may
         * be reading: let those finish first, so the mistake is an error
         * (reported by finish on every rank that made it), never a race. */
        g->misuse = 1;
        for (int i = 0; i < g->next; i++)
            if (g->b[i].req != MPI_REQUEST_NULL)
                MPI_Wait(&g->b[i].req, MPI_STATUS_IGNORE);
    }
    if (sync)
        g->synced_backwards++;
}

/* Start bucket b's exchange: every rank starts the same buckets in the same
 * order. */
static int start_bucket(mf_grad_sync *g, bucket *b)
{
    float *grads = mf_model_grads(g->m);
    size_t n = b->hi - b->lo;
    b->t0 = mf_now();
    b->phase = B_EXCHANGE;
    b->req = MPI_REQUEST_NULL;
    if (g->compress == MF_COMPRESS_NONE) {
        atomic_fetch_add(&g->c->grad_bytes, (long long)(n * sizeof(float)));
        return MPI_Iallreduce(MPI_IN_PLACE, grads + b->lo, (int)n, MPI_FLOAT, MPI_SUM, g->c->comm, &b->req);
    }
    size_t p = (size_t)g->c->size;
    mf_half_encode(b->wire, grads + b->lo, g->resid + b->lo, n, g->compress == MF_COMPRESS_BF16);
    memset(b->wire + n, 0, (p * b->c - n) * sizeof *b->wire); /* the last chunk's padding */
    atomic_fetch_add(&g->c->grad_bytes, (long long)(n * sizeof(uint16_t)));
    return MPI_Ialltoall(b->wire, (int)b->c, MPI_UINT16_T, b->parts, (int)b->c, MPI_UINT16_T, g->c->comm, &b->req);
}

/* Start the allgathers of the reduced buckets whose turn it is. MPI matches
 * collectives on a communicator by the order the ranks start them, and a rank
 * sees an all-to-all complete when it happens to test it: so the allgathers
 * have a communicator of their own (c->gather) and start strictly in bucket
 * order, as the all-to-alls do on c->comm; every rank then starts the same
 * sequence on each. */
static int start_gathers(mf_grad_sync *g)
{
    while (g->next_gather < g->n && g->b[g->next_gather].phase == B_REDUCED) {
        bucket *b = &g->b[g->next_gather++];
        b->phase = B_GATHER;
        int rc =
            MPI_Iallgather(b->own, (int)b->c, MPI_UINT16_T, b->wire, (int)b->c, MPI_UINT16_T, g->c->gather, &b->req);
        if (rc != MPI_SUCCESS)
            return rc;
    }
    return MPI_SUCCESS;
}

/* Bucket i's request has completed: its next phase. */
static int advance_bucket(mf_grad_sync *g, int i)
{
    bucket *b = &g->b[i];
    if (g->compress != MF_COMPRESS_NONE && b->phase == B_EXCHANGE) {
        mf_half_reduce(b->own, b->own_resid, b->parts, g->c->size, b->c, g->compress == MF_COMPRESS_BF16);
        b->phase = B_REDUCED;
        b->req = MPI_REQUEST_NULL;
        return start_gathers(g);
    }
    b->phase = B_DONE;
    trace_bucket(b, i, g->n);
    return MPI_SUCCESS;
}

/* Finish bucket i (started), waiting under the watchdog. */
static int complete_bucket(mf_grad_sync *g, int i)
{
    char what[64];
    snprintf(what, sizeof what, "the gradient allreduce (bucket %d of %d)", i + 1, g->n);
    while (g->b[i].phase != B_DONE) {
        if (g->b[i].phase == B_REDUCED) { /* cannot happen: every earlier bucket is done */
            int rc = start_gathers(g);
            if (rc != MPI_SUCCESS || g->b[i].phase == B_REDUCED)
                return rc != MPI_SUCCESS ? rc : MPI_ERR_INTERN;
        }
        watch_begin(g->c, what);
        int rc = wait_watched(g->c, &g->b[i].req);
        watch_end(g->c);
        if (rc == MPI_SUCCESS)
            rc = advance_bucket(g, i);
        if (rc != MPI_SUCCESS)
            return rc;
    }
    return MPI_SUCCESS;
}

/* After bucket b's exchange: the sum divided by the number of ranks, back in
 * the gradient buffer. */
static void end_bucket(mf_grad_sync *g, const bucket *b)
{
    float *grads = mf_model_grads(g->m), inv = 1.0f / (float)g->c->size;
    if (g->compress != MF_COMPRESS_NONE) {
        mf_half_decode(grads + b->lo, b->wire, b->hi - b->lo, inv, g->compress == MF_COMPRESS_BF16);
        return;
    }
    for (size_t k = b->lo; k < b->hi; k++)
        grads[k] *= inv;
}

/* Start the buckets that are complete, strictly in index order. */
static void launch_ready(mf_grad_sync *g)
{
    while (g->next < g->n && g->b[g->next].pending == 0) {
        int rc = start_bucket(g, &g->b[g->next++]);
        if (rc != MPI_SUCCESS && !g->error)
            g->error = rc;
    }
}

void mf_grad_sync_layer_done(mf_grad_sync *g, int layer)
{
    if (!g->active || g->misuse || layer < 0 || layer >= g->n_layers)
        return;
    for (int k = 0; k < g->layer_count[layer]; k++) {
        int t = g->layer_first[layer] + k;
        if (g->tensor_bucket[t] >= 0)
            g->b[g->tensor_bucket[t]].pending--;
    }
    if (!g->overlap || g->c->size == 1)
        return;
    launch_ready(g);
    if (g->error)
        return; /* finish reports it */
    /* Open MPI advances non-blocking collectives only inside MPI calls: a test
     * per layer keeps the in-flight buckets moving while backward computes
     * (and moves a compressed bucket on to its second exchange) */
    for (int i = 0; i < g->next; i++)
        if (g->b[i].phase == B_EXCHANGE || g->b[i].phase == B_GATHER) {
            int done = 0;
            int rc = MPI_Test(&g->b[i].req, &done, MPI_STATUS_IGNORE);
            if (rc == MPI_SUCCESS && done)
                rc = advance_bucket(g, i);
            if (rc != MPI_SUCCESS && !g->error)
                g->error = rc;
        }
}

mf_status mf_grad_sync_finish(mf_grad_sync *g)
{
    if (g->misuse) {
        g->active = g->misuse = 0;
        return mf_fail(MF_STATUS_INVALID,
                       "rank %d: another backward pass began in this step after one with gradient sync on (whose "
                       "gradients were already being allreduced); to accumulate, turn sync off for every "
                       "backward but the last (mf_fit_set_grad_sync(ctx, 0)), as [train] accumulate_steps does",
                       g->c->rank);
    }
    if (g->c->size == 1)
        return MF_STATUS_OK;
    if (!g->active)
        mf_grad_sync_begin(g); /* gradients filled by other means: reduce them all */
    g->active = 0;
    double t0 = mf_now();
    if (g->error) {
        int rc = g->error;
        g->error = 0;
        return mpi_fail(rc, "a non-blocking exchange of a gradient bucket");
    }
    if (mf_fault_hit("kill_in_allreduce")) /* the fault tests: a rank dies mid-reduction */
        raise(SIGKILL);
    if (g->overlap) {
        for (int i = 0; i < g->n; i++)
            g->b[i].pending = 0; /* whatever backward did not report is final now */
        launch_ready(g);
        if (g->error) {
            int rc = g->error;
            g->error = 0;
            return mpi_fail(rc, "starting the exchange of a gradient bucket");
        }
        for (int i = 0; i < g->n; i++) {
            int rc = complete_bucket(g, i);
            if (rc != MPI_SUCCESS)
                return mpi_fail(rc, "MPI_Wait (gradient bucket)");
        }
    } else {
        for (int i = 0; i < g->n; i++) {
            int rc = start_bucket(g, &g->b[i]);
            if (rc == MPI_SUCCESS)
                rc = complete_bucket(g, i);
            if (rc != MPI_SUCCESS)
                return mpi_fail(rc, "the gradient allreduce (bucket)");
        }
    }
    g->wait += mf_now() - t0;
    for (int i = 0; i < g->n; i++)
        end_bucket(g, &g->b[i]);
    return MF_STATUS_OK;
}
