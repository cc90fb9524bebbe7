/* trace.c: the training timeline (trace.h). Spans are kept in memory, one
 * fixed-size record each, and written once at the end as Chrome trace-event
 * JSON: "X" (complete) events with microsecond start and duration, the rank
 * as process and MF_TRACE_COMPUTE / MF_TRACE_COMM as threads, named by "M"
 * metadata events. A mutex guards the records: the hooks run on the main
 * thread today, nothing here relies on it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trace.h"
#include "core.h"

typedef struct span {
    double t0, t1;
    int tid;
    char cat[16];
    char name[64];
} span;

static struct {
    int on, rank;
    char path[4096];
    double start;
    span *s;
    long n, cap, max, dropped; /* cap grows by doubling up to max */
    pthread_mutex_t lock;
} tr = {.lock = PTHREAD_MUTEX_INITIALIZER};

mf_status mf_trace_start(const char *path, int rank, long max_events)
{
    if (max_events < 1)
        return mf_fail(MF_STATUS_INVALID, "trace: max_events must be >= 1, got %ld", max_events);
    if (!mf_strlcpy(tr.path, path, sizeof tr.path))
        return mf_fail(MF_STATUS_INVALID, "trace: path too long: %s", path);
    pthread_mutex_lock(&tr.lock);
    mf_free(tr.s);
    tr.cap = max_events < 4096 ? max_events : 4096;
    tr.s = mf_alloc((size_t)tr.cap * sizeof *tr.s);
    tr.max = max_events;
    tr.n = tr.dropped = 0;
    tr.rank = rank;
    tr.start = mf_now();
    tr.on = 1;
    pthread_mutex_unlock(&tr.lock);
    return MF_STATUS_OK;
}

int mf_trace_on(void) { return tr.on; }

void mf_trace_span(const char *cat, const char *name, int tid, double t0, double t1)
{
    if (!tr.on)
        return;
    pthread_mutex_lock(&tr.lock);
    if (tr.n == tr.cap && tr.cap < tr.max) {
        long cap = tr.cap * 2 < tr.max ? tr.cap * 2 : tr.max;
        span *ns = mf_alloc((size_t)cap * sizeof *ns);
        memcpy(ns, tr.s, (size_t)tr.n * sizeof *ns);
        mf_free(tr.s);
        tr.s = ns;
        tr.cap = cap;
    }
    if (tr.n < tr.cap) {
        span *s = &tr.s[tr.n++];
        s->t0 = t0;
        s->t1 = t1 > t0 ? t1 : t0;
        s->tid = tid;
        mf_strlcpy(s->cat, cat, sizeof s->cat);
        mf_strlcpy(s->name, name, sizeof s->name);
    } else {
        tr.dropped++;
    }
    pthread_mutex_unlock(&tr.lock);
}

/* s as a JSON string body into out (quotes and backslashes escaped, control
 * characters dropped: layer names are plain) */
static void json_str(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[k++] = '\\';
        if ((unsigned char)*s >= 0x20)
            out[k++] = *s;
    }
    out[k] = '\0';
}

mf_status mf_trace_stop(void)
{
    if (!tr.on)
        return MF_STATUS_OK;
    pthread_mutex_lock(&tr.lock);
    tr.on = 0;
    size_t cap = 1024 + (size_t)tr.n * 224, len = 0;
    char *buf = mf_alloc(cap);
    len += (size_t)snprintf(
        buf + len, cap - len,
        "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"rank\": %d, \"spans_dropped\": %ld},\n"
        "\"traceEvents\": [\n"
        "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"rank %d\"}},\n"
        "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"args\": {\"name\": "
        "\"compute\"}},\n"
        "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"args\": {\"name\": "
        "\"gradient allreduce\"}}",
        tr.rank, tr.dropped, tr.rank, tr.rank, tr.rank, MF_TRACE_COMPUTE, tr.rank, MF_TRACE_COMM);
    for (long i = 0; i < tr.n; i++) {
        const span *s = &tr.s[i];
        char name[160], cat[40];
        json_str(name, sizeof name, s->name);
        json_str(cat, sizeof cat, s->cat);
        len += (size_t)snprintf(buf + len, cap - len,
                                ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.1f, \"dur\": %.1f, "
                                "\"pid\": %d, \"tid\": %d}",
                                name, cat, (s->t0 - tr.start) * 1e6, (s->t1 - s->t0) * 1e6, tr.rank, s->tid);
    }
    len += (size_t)snprintf(buf + len, cap - len, "\n]}\n");
    mf_free(tr.s);
    tr.s = NULL;
    tr.n = tr.cap = 0;
    pthread_mutex_unlock(&tr.lock);
    mf_status st = mf_write_file(tr.path, (const uint8_t *)buf, len);
    mf_free(buf);
    return st;
}
