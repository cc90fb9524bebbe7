/* preempt.c: SIGTERM / SIGUSR1 as a request to stop cleanly (Slurm's
 * --signal=USR1@120, PBS' SIGTERM before the walltime). The first signal sets
 * a flag that fit reads at step boundaries; a second one means "now": the
 * process exits at once with 128 + signal. Atomic checkpoint writes (temporary
 * file, fsync, rename) make that safe: the last good checkpoint is untouched.
 * One event often arrives twice (the scheduler signals the process directly
 * and the launcher forwards the same signal): the same signal again within
 * DUP_WINDOW seconds is that duplicate and is ignored, so it cannot cancel the
 * checkpoint it asked for. */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fit_internal.h"

#define DUP_WINDOW 3

static volatile sig_atomic_t requested;
static volatile sig_atomic_t first_at; /* monotonic seconds of the first signal */

static int now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* async-signal-safe */
    return (int)t.tv_sec;
}

static void on_signal(int sig)
{
    if (requested) {
        if (sig == requested && now_s() - first_at < DUP_WINDOW)
            return; /* the same event, delivered twice */
        _exit(128 + sig); /* async-signal-safe; no cleanup on purpose */
    }
    first_at = now_s();
    requested = sig;
}

void mf_preemption_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* Each handler blocks the other signal: a USR1 landing while the TERM
     * handler runs waits until `requested` is set, so the second signal of a
     * pair always exits, whatever the interleaving. */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sa.sa_flags = SA_RESTART; /* a blocking read or wait simply goes on */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int mf_preemption_requested(void) { return (int)requested; }
