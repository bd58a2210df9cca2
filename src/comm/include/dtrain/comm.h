/* The communication interface between the workers of one synchronous job.
 *
 * The training loop talks to the other ranks only through this: broadcast,
 * all-reduce (average) of a range of the flat gradient buffer, blocking or started
 * without waiting so that it overlaps backward, sum of metric values, all-gather of
 * a small record, barrier. Implementations: "single" (one process, every call is a
 * no-op or a copy) and "mpi"; "nccl" can be added behind the same table of
 * operations.
 *
 * Watchdog: no operation waits longer than c->timeout_s. A collective that does not
 * finish in time fails with DT_ERR_TIMEOUT and a message that names the ranks it is
 * waiting for and the step they are at; each rank publishes its step with
 * dt_comm_set_step so that the others can tell. After such an error the other ranks
 * may be stuck, so main() ends the job with dt_comm_abort rather than finalize. */
#ifndef DTRAIN_COMM_H
#define DTRAIN_COMM_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/error.h"

typedef struct dt_comm dt_comm_t;

typedef struct {
  const char *name;
  int (*broadcast)(dt_comm_t *c, void *buf, size_t bytes, int root, dt_error_t *err);
  /* buf[0..count) becomes the sum over ranks (metrics: loss sums, correct counts). */
  int (*allreduce_sum_f64)(dt_comm_t *c, double *buf, size_t count, dt_error_t *err);
  /* all[r*bytes .. (r+1)*bytes) becomes rank r's `mine`, for every rank r. */
  int (*allgather)(dt_comm_t *c, const void *mine, void *all, size_t bytes, dt_error_t *err);
  int (*barrier)(dt_comm_t *c, dt_error_t *err);
  /* Starts averaging buf[0..count) across ranks without waiting; buf must not be
   * touched until dt_comm_wait_all returns. Every rank must start the same ranges in
   * the same order. */
  int (*start_allreduce_avg)(dt_comm_t *c, float *buf, size_t count, dt_error_t *err);
  /* Lets the pending operations advance (MPI only progresses inside MPI calls);
   * never waits. */
  int (*progress)(dt_comm_t *c, dt_error_t *err);
  /* Waits for every pending operation. On timeout returns DT_ERR_TIMEOUT and sets
   * *stuck (if not NULL) to the position, in start order since the last wait_all,
   * of the first one that had not finished (else -1). */
  int (*wait_all)(dt_comm_t *c, int *stuck, dt_error_t *err);
  /* Publishes the step this rank is working on, for the others' timeout reports. */
  void (*set_step)(dt_comm_t *c, long step);
  /* Ends every other rank of the job, and with MPI this process too, with exit
   * status code; for main() only, after an error that the other ranks may not know
   * about. With one process it returns and the caller exits as usual. */
  void (*abort)(dt_comm_t *c, int code);
  void (*finalize)(dt_comm_t *c);
} dt_comm_ops_t;

/* How start_allreduce_avg moves data between ranks (the single communicator has
 * nothing to move). */
typedef enum {
  /* Our ring over point-to-point messages (reduce-scatter, then all-gather), advanced
   * by every progress/wait call: bandwidth-optimal, 0.75-1.0x the bus bandwidth of
   * Open MPI's blocking MPI_Allreduce on one host, where Open MPI 4.1's
   * MPI_Iallreduce reaches about 0.5x (bench/bench_sync.sh). */
  DT_ALLREDUCE_RING,
  /* The MPI library's MPI_Iallreduce. */
  DT_ALLREDUCE_MPI
} dt_allreduce_algo;

extern const char *const dt_allreduce_names[]; /* "ring", "mpi", NULL */

struct dt_comm {
  const dt_comm_ops_t *ops;
  int rank, world;
  double timeout_s;            /* watchdog: longest wait for one collective (default 300) */
  dt_allreduce_algo allreduce; /* every rank must use the same */
  void *impl;
};

enum { DT_COMM_DEFAULT_TIMEOUT_S = 300 };

/* The one-process communicator: rank 0 of 1. */
void dt_comm_init_single(dt_comm_t *c);

/* True if this process was started by an MPI launcher (mpirun/mpiexec, Slurm srun,
 * a PMI/PMIx process manager), judging by the environment those set. */
bool dt_comm_mpi_launched(void);

/* Initializes MPI (argc/argv may be NULL) and makes c a communicator over
 * MPI_COMM_WORLD. Fails with DT_ERR_COMM if MPI cannot start, or if the launcher
 * says there are several tasks but MPI sees one (srun without its MPI plugin). */
int dt_comm_init_mpi(dt_comm_t *c, int *argc, char ***argv, dt_error_t *err);

static inline int dt_comm_broadcast(dt_comm_t *c, void *buf, size_t bytes, int root,
                                    dt_error_t *err) {
  return c->ops->broadcast(c, buf, bytes, root, err);
}
static inline int dt_comm_allreduce_sum_f64(dt_comm_t *c, double *buf, size_t count,
                                            dt_error_t *err) {
  return c->ops->allreduce_sum_f64(c, buf, count, err);
}
static inline int dt_comm_allgather(dt_comm_t *c, const void *mine, void *all, size_t bytes,
                                    dt_error_t *err) {
  return c->ops->allgather(c, mine, all, bytes, err);
}
static inline int dt_comm_barrier(dt_comm_t *c, dt_error_t *err) { return c->ops->barrier(c, err); }
static inline int dt_comm_start_allreduce_avg(dt_comm_t *c, float *buf, size_t count,
                                              dt_error_t *err) {
  return c->ops->start_allreduce_avg(c, buf, count, err);
}
static inline int dt_comm_progress(dt_comm_t *c, dt_error_t *err) {
  return c->ops->progress(c, err);
}
static inline int dt_comm_wait_all(dt_comm_t *c, int *stuck, dt_error_t *err) {
  return c->ops->wait_all(c, stuck, err);
}
/* Blocking form: buf[0..count) becomes the average over ranks of everyone's buf. Started
 * in chunks that one MPI call takes, then one wait for all of them. */
static inline int dt_comm_allreduce_avg(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < count; off += chunk) {
    int rc = c->ops->start_allreduce_avg(c, buf + off, count - off < chunk ? count - off : chunk,
                                         err);
    if (rc) return rc;
  }
  return c->ops->wait_all(c, NULL, err);
}
static inline void dt_comm_set_step(dt_comm_t *c, long step) { c->ops->set_step(c, step); }
static inline void dt_comm_abort(dt_comm_t *c, int code) { c->ops->abort(c, code); }
static inline void dt_comm_finalize(dt_comm_t *c) { c->ops->finalize(c); }

#endif
