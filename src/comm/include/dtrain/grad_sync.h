/* The synchronous gradient exchange: averages the flat gradient buffer across ranks
 * in fixed-size buckets that start while backward is still running.
 *
 * Buckets are laid over the buffer from its end: bucket 0 is the last `bucket`
 * floats, bucket 1 the ones before, and so on. Backward produces gradients from the
 * last layer to the first, i.e. from the end of the buffer to its start, and reports
 * each layer through the model's on_grads_ready hook (dt_grad_sync_ready); as soon as
 * the final gradients cover a whole bucket, its non-blocking all-reduce starts, so
 * the exchange of the tail overlaps the backward of the head. dt_grad_sync_finish
 * starts what is left, waits for everything (under the communicator's watchdog) and
 * leaves the averaged gradients in place for the optimizer.
 *
 * One bucket (bucket size 0) is the plain, unbucketed all-reduce. With 2 ranks,
 * bucketed and unbucketed exchanges give bit-identical results (each element is
 * a + b, then halved); with more ranks the order in which an element's values are
 * added depends on where the ring's segments fall, so they agree to float rounding.
 * Either way every rank ends with the same bits. */
#ifndef DTRAIN_GRAD_SYNC_H
#define DTRAIN_GRAD_SYNC_H

#include <stddef.h>

#include "dtrain/comm.h"
#include "dtrain/device.h"
#include "dtrain/error.h"

typedef struct {
  dt_comm_t *comm;
  float *buf;        /* (n) the gradients */
  size_t n;
  size_t bucket;     /* floats per bucket (the first bucket of the buffer may be shorter) */
  int nbuckets;
  int next;          /* the next bucket to start this step */
  size_t ready_from; /* buf[ready_from, n) is final this step */
  long step;         /* the step being exchanged, for messages */
  dt_error_t err;    /* the first error from a start inside the backward hook */
} dt_grad_sync_t;

/* Buckets of bucket_mb MiB (0: one bucket for the whole buffer). */
int dt_grad_sync_init(dt_grad_sync_t *s, dt_comm_t *comm, float *buf, size_t n, double bucket_mb,
                      dt_error_t *err);

/* [begin, end) of bucket i (0 is the tail of the buffer). */
void dt_grad_sync_bucket_range(const dt_grad_sync_t *s, int i, size_t *begin, size_t *end);

/* Starts a step: nothing of the buffer is final yet. `step` (1-based) is published to
 * the other ranks for the watchdog's reports. */
void dt_grad_sync_begin(dt_grad_sync_t *s, long step);

/* The model's on_grads_ready hook (ctx is the dt_grad_sync_t): buf[begin, end) is
 * final once the device event `ready` completes (NULL: final already). Waits for it,
 * starts every bucket that is now fully final and lets MPI progress. */
void dt_grad_sync_ready(void *ctx, size_t begin, size_t end, dt_device_event_t *ready);

/* Starts the buckets not started yet and waits for all of them; buf then holds the
 * average over ranks. A timeout names the step and the bucket. */
int dt_grad_sync_finish(dt_grad_sync_t *s, dt_error_t *err);

#endif
