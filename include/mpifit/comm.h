/* mpifit/comm.h: the MPI layer. Everything that crosses ranks goes through an
 * mf_comm, which wraps a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN so
 * that a failing call becomes an mf_status with MPI's own error text. The
 * implementation (src/dist/comm.c) is the only file that calls MPI.
 *
 * "Collective:" below means every rank of the communicator must make the call,
 * in the same order. */
#ifndef MPIFIT_COMM_H
#define MPIFIT_COMM_H
#include <stddef.h>
#include <stdint.h>
#include "mpifit/status.h"
#include "mpifit/model.h"

typedef struct mf_comm mf_comm;

/* Start MPI if nobody did (MPI_Init_thread, FUNNELED), duplicate
 * MPI_COMM_WORLD, make MF_ASSERT/panics end the whole job with MPI_Abort, and
 * prefix log lines with the rank. Works without mpirun (one rank).
 * Collective. */
MF_API mf_status mf_comm_create(int *argc, char ***argv, mf_comm **out);
/* Free the communicator; MPI_Finalize if mf_comm_create started MPI.
 * Collective. NULL is a no-op. */
MF_API void mf_comm_free(mf_comm *c);
/* The watchdog: when one blocking collective (a broadcast, an allreduce,
 * the gradient buckets, the step-boundary agreement) has not completed after
 * `seconds`, this rank prints what it waited for and where (see
 * mf_comm_set_context), and ends the whole job (MPI_Abort, exit status 124).
 * A stopped, hung or dead rank then cannot keep the others waiting for the
 * rest of the allocation. 0 turns it off (the default); a single process has
 * nothing to wait for. */
MF_API void mf_comm_set_timeout(mf_comm *c, double seconds);
/* Where the caller is ("epoch 3, step 17"), for the watchdog's message. */
MF_API void mf_comm_set_context(mf_comm *c, const char *fmt, ...) MF_PRINTF_ATTR(2, 3);
MF_API int mf_comm_rank(const mf_comm *c);
MF_API int mf_comm_size(const mf_comm *c);
/* Ranks on this node (MPI_COMM_TYPE_SHARED), and this rank's index among them. */
MF_API int mf_comm_local_size(const mf_comm *c);
MF_API int mf_comm_local_rank(const mf_comm *c);

/* Collective. Broadcast n floats / bytes from root. */
MF_API mf_status mf_comm_bcast_floats(mf_comm *c, float *buf, size_t n, int root);
MF_API mf_status mf_comm_bcast_bytes(mf_comm *c, void *buf, size_t n, int root);
/* Collective. all (size x n bytes) = every rank's `mine`, in rank order. */
MF_API mf_status mf_comm_allgather_bytes(mf_comm *c, const void *mine, size_t n, void *all);
/* Collective. buf[i] = sum over ranks of buf[i] (doubles: metric states, BN sums). */
MF_API mf_status mf_comm_allreduce_sum(mf_comm *c, double *buf, int n);
/* Collective. buf[i] = min / max over ranks. */
MF_API mf_status mf_comm_allreduce_min_max(mf_comm *c, int64_t *min_buf, int64_t *max_buf, int n);
/* Collective, 2 or more ranks: `reps` measurements of a 1-byte ping-pong's
 * half round trip between ranks 0 and 1 (pingpong[r], seconds, averaged over
 * 100 round trips) and of an in-place MPI_SUM allreduce of `floats` floats
 * (allreduce[r], seconds): what `mpifit bench --comm` reports. */
MF_API mf_status mf_comm_bench(mf_comm *c, size_t floats, int reps, double *pingpong, double *allreduce);
/* Collective, 2 or more ranks: what an exchange in flight costs compute on
 * this rank's cores (the CPU of its copies, reductions and the kernel's
 * network work, which overlap cannot hide where no core is idle). `reps`
 * alternated measurements, seconds: exchange[r], an MPI_Iallreduce of `floats`
 * floats waited for at once (the ring fit uses); alone[r], `chunks` calls of
 * work(arg); beside[r], the same calls with that allreduce started before them
 * and an MPI_Test after each; after[r], the wait for it left after the last. */
MF_API mf_status mf_comm_bench_overlap(mf_comm *c, size_t floats, int reps, int chunks, void (*work)(void *), void *arg,
                                       double *exchange, double *alone, double *beside, double *after);
/* Bytes this rank has put into the gradient exchange so far (the bucketed
 * float allreduce, or deterministic mode's int64 allreduce and BatchNorm
 * allgather): `mpifit bench` reports them per step. 0 for NULL. */
MF_API long long mf_comm_grad_bytes(const mf_comm *c);
/* Count n more bytes of it (a collective made through another call). */
MF_API void mf_comm_count_grad_bytes(mf_comm *c, size_t n);
/* Collective. *v = the largest *v of any rank (exact in any order). */
MF_API mf_status mf_comm_allreduce_max_f64(mf_comm *c, double *v);
/* Collective. buf[i] = sum over ranks of buf[i], in 64-bit integers: exact,
 * so the result does not depend on the order MPI adds in (deterministic
 * mode's fixed-point gradients). Any n (sent in pieces of 2^28). */
MF_API mf_status mf_comm_allreduce_sum_i64(mf_comm *c, int64_t *buf, size_t n);
/* Collective. buf = average over ranks (BatchNorm moving statistics before
 * evaluation and checkpoints, so every rank and file agree). */
MF_API mf_status mf_comm_average_floats(mf_comm *c, float *buf, size_t n);
/* Collective: the cheap error flag at step boundaries. Every rank passes its
 * local status; returns MF_STATUS_OK if all are OK. Otherwise every rank gets
 * the status and the message of the lowest failing rank, prefixed with its rank
 * ("rank 1: bad image ..."), in mf_last_error(). */
MF_API mf_status mf_comm_agree(mf_comm *c, mf_status local);
/* Collective: 1 if `bytes` of buf hash to the same value on every rank. */
MF_API mf_status mf_comm_identical(mf_comm *c, const void *buf, size_t bytes, int *identical);
/* End every rank now (MPI_Abort) after printing msg with this rank's prefix:
 * for failures after which the ranks can no longer meet in a collective. */
MF_API void mf_comm_abort(mf_comm *c, int code, const char *msg);

/* ---- gradient averaging, bucketed and overlapped with backward ------------- */

/* A gradient synchroniser for model m: the trainable part of the gradient
 * buffer is cut into buckets of about bucket_bytes, last layers first (the
 * order backward produces them). With overlap, a bucket's MPI_Iallreduce starts
 * as soon as backward has finished every layer in it (as PyTorch DDP's buckets
 * and Horovod's tensor fusion), so communication runs under the rest of
 * backward; without, mf_grad_sync_finish does blocking allreduces. Frozen
 * layers are not in any bucket. Call after freezing/unfreezing changes:
 * the buckets are planned at creation. */
typedef struct mf_grad_sync mf_grad_sync;
MF_API mf_grad_sync *mf_grad_sync_create(mf_comm *c, mf_model *m, size_t bucket_bytes, int overlap);
MF_API void mf_grad_sync_free(mf_grad_sync *g);
/* How the buckets travel ([dist] compress): as floats (NONE, the default, one
 * MPI_Iallreduce per bucket), or rounded to 16 bits, IEEE half (FP16) or
 * bfloat16 (BF16), which halves the bytes on the wire. A compressed bucket is
 * cut into one chunk per rank; an all-to-all gives each rank every rank's copy
 * of its chunk, it adds them in float in rank order and rounds the sum once,
 * and an allgather returns the sums (a ring allreduce's bytes, with no
 * rounded partial sums, and the same bits on every rank). Every sender keeps
 * what its rounding lost, and every chunk's owner what the sum's rounding
 * lost, and adds it in at the next step (error feedback), so over the steps no
 * part of any gradient is dropped, only delayed. The kept remainders (about
 * 1 + 1/ranks floats per trainable parameter) live as long as g: they are not
 * in checkpoints, and re-planned buckets start without them. One process
 * never compresses (nothing travels). Not between begin and finish. */
typedef enum mf_compress { MF_COMPRESS_NONE = 0, MF_COMPRESS_FP16, MF_COMPRESS_BF16 } mf_compress;
MF_API mf_status mf_grad_sync_set_compress(mf_grad_sync *g, mf_compress mode);
/* Before a backward pass whose gradients are to be reduced. */
MF_API void mf_grad_sync_begin(mf_grad_sync *g);
/* Called by the model after layer i's backward (see mf_model_set_backward_hook). */
MF_API void mf_grad_sync_layer_done(mf_grad_sync *g, int layer);
/* Called by the model when a backward pass begins; sync: this pass's
 * gradients are to be reduced. A pass that begins after one with sync on (in
 * the same begin..finish) makes finish fail with a message: gradient
 * accumulation turns sync off for all but the last pass. */
MF_API void mf_grad_sync_backward_begin(mf_grad_sync *g, int sync);
/* Collective. Start what has not started, wait for everything, divide by the
 * number of ranks: the gradient buffer is the global average. */
MF_API mf_status mf_grad_sync_finish(mf_grad_sync *g);
MF_API int mf_grad_sync_num_buckets(const mf_grad_sync *g);
/* Seconds finish() spent waiting, summed since creation (overlap diagnostics). */
MF_API double mf_grad_sync_wait_seconds(const mf_grad_sync *g);
#endif
