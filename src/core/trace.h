/* trace.h: a per-rank timeline of training ([output] trace): spans of
 * forward and backward per layer, each gradient bucket's allreduce, data
 * waits, steps and checkpoints, written as Chrome trace-event JSON (Perfetto
 * and chrome://tracing open it). Off unless mf_trace_start was called: every
 * hook is then one test of a flag. */
#ifndef MF_TRACE_H
#define MF_TRACE_H
#include "mpifit/status.h"

/* Threads of the timeline (its "tid"): the computation, the gradient exchange. */
enum { MF_TRACE_COMPUTE = 0, MF_TRACE_COMM = 1 };

/* Start recording for `rank` into `path` (written by mf_trace_stop); at most
 * max_events spans are kept (later ones are counted, not kept; memory grows
 * as spans come, 88 bytes each). The caller
 * starts every rank at a barrier: times count from here. */
mf_status mf_trace_start(const char *path, int rank, long max_events);
int mf_trace_on(void);
/* One span [t0, t1] of mf_now() seconds; cat and name are copied (cut at 15
 * and 63 bytes). */
void mf_trace_span(const char *cat, const char *name, int tid, double t0, double t1);
/* Write the file (atomically) and stop; a no-op when not started. */
mf_status mf_trace_stop(void);
#endif
