/* The communication interface between the workers of one synchronous job.
 *
 * The training loop talks to the other ranks only through this: broadcast,
 * all-reduce (average) of a range of the flat gradient buffer, sum of metric
 * values, barrier. Implementations: "single" (one process, every call is a no-op
 * or a copy) and, with the sync issue, "mpi"; "nccl" can be added behind the same
 * table of operations. */
#ifndef DTRAIN_COMM_H
#define DTRAIN_COMM_H

#include <stddef.h>

#include "dtrain/error.h"

typedef struct dt_comm dt_comm_t;

typedef struct {
  const char *name;
  int (*broadcast)(dt_comm_t *c, void *buf, size_t bytes, int root, dt_error_t *err);
  /* buf[0..count) becomes the average over ranks of everyone's buf. */
  int (*allreduce_avg)(dt_comm_t *c, float *buf, size_t count, dt_error_t *err);
  /* buf[0..count) becomes the sum over ranks (metrics: loss sums, correct counts). */
  int (*allreduce_sum_f64)(dt_comm_t *c, double *buf, size_t count, dt_error_t *err);
  int (*barrier)(dt_comm_t *c, dt_error_t *err);
  void (*finalize)(dt_comm_t *c);
} dt_comm_ops_t;

struct dt_comm {
  const dt_comm_ops_t *ops;
  int rank, world;
  void *impl;
};

/* The one-process communicator: rank 0 of 1. */
void dt_comm_init_single(dt_comm_t *c);

static inline int dt_comm_broadcast(dt_comm_t *c, void *buf, size_t bytes, int root,
                                    dt_error_t *err) {
  return c->ops->broadcast(c, buf, bytes, root, err);
}
static inline int dt_comm_allreduce_avg(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  return c->ops->allreduce_avg(c, buf, count, err);
}
static inline int dt_comm_allreduce_sum_f64(dt_comm_t *c, double *buf, size_t count,
                                            dt_error_t *err) {
  return c->ops->allreduce_sum_f64(c, buf, count, err);
}
static inline int dt_comm_barrier(dt_comm_t *c, dt_error_t *err) { return c->ops->barrier(c, err); }
static inline void dt_comm_finalize(dt_comm_t *c) { c->ops->finalize(c); }

#endif
