/* The bucketed gradient exchange (see grad_sync.h). */
#include "dtrain/grad_sync.h"

#include <string.h>

int dt_grad_sync_init(dt_grad_sync_t *s, dt_comm_t *comm, float *buf, size_t n, double bucket_mb,
                      dt_error_t *err) {
  memset(s, 0, sizeof *s);
  if (!(bucket_mb >= 0.0))
    return dt_error_set(err, DT_ERR_ARG, "gradient bucket size %g MB is negative", bucket_mb);
  s->comm = comm;
  s->buf = buf;
  s->n = n;
  /* One MPI call takes at most INT_MAX elements: 2^30 floats keeps a bucket below. */
  const size_t most = (size_t)1 << 30;
  size_t floats = bucket_mb > 0.0 ? (size_t)(bucket_mb * 1024.0 * 1024.0 / sizeof(float)) : n;
  if (floats == 0) floats = 1;
  if (floats > most) floats = most;
  s->bucket = floats;
  s->nbuckets = n ? (int)((n + floats - 1) / floats) : 0;
  s->ready_from = n;
  return 0;
}

void dt_grad_sync_bucket_range(const dt_grad_sync_t *s, int i, size_t *begin, size_t *end) {
  size_t from_end = (size_t)i * s->bucket;
  *end = s->n - from_end;
  *begin = *end > s->bucket ? *end - s->bucket : 0;
}

void dt_grad_sync_begin(dt_grad_sync_t *s, long step) {
  s->next = 0;
  s->ready_from = s->n;
  s->step = step;
  dt_comm_set_step(s->comm, step);
}

/* Starts buckets in order while they lie entirely in the final part of the buffer. */
static int start_ready(dt_grad_sync_t *s, size_t ready_from, dt_error_t *err) {
  while (s->next < s->nbuckets) {
    size_t begin, end;
    dt_grad_sync_bucket_range(s, s->next, &begin, &end);
    if (begin < ready_from) break;
    int rc = dt_comm_start_allreduce_avg(s->comm, s->buf + begin, end - begin, err);
    if (rc) return rc;
    s->next++;
  }
  return 0;
}

void dt_grad_sync_ready(void *ctx, size_t begin, size_t end, dt_device_event_t *ready) {
  dt_grad_sync_t *s = ctx;
  if (s->comm->world == 1 || s->err.code) return;
  /* Layers report contiguous ranges from the end; a range that leaves a gap above it
   * cannot move the final region (the gap's gradients are not done). */
  if (begin >= s->ready_from || end < s->ready_from) return;
  /* MPI reads the buffer from host memory: the device must have written it first. */
  if (ready && dt_device_event_synchronize(ready, &s->err)) return;
  s->ready_from = begin;
  if (start_ready(s, s->ready_from, &s->err) == 0) dt_comm_progress(s->comm, &s->err);
}

int dt_grad_sync_finish(dt_grad_sync_t *s, dt_error_t *err) {
  if (s->comm->world == 1) return 0;
  if (s->err.code) {
    *err = s->err;
    return dt_error_prefix(err, "step %ld: gradient exchange: ", s->step);
  }
  int rc = start_ready(s, 0, err);
  if (rc) return dt_error_prefix(err, "step %ld: gradient exchange: ", s->step);
  int stuck = -1;
  rc = dt_comm_wait_all(s->comm, &stuck, err);
  if (rc == DT_ERR_TIMEOUT && stuck >= 0) {
    size_t begin, end;
    dt_grad_sync_bucket_range(s, stuck, &begin, &end);
    return dt_error_prefix(err, "step %ld: gradient bucket %d of %d (floats [%zu, %zu) of %zu): ",
                           s->step, stuck, s->nbuckets, begin, end, s->n);
  }
  if (rc) return dt_error_prefix(err, "step %ld: gradient exchange: ", s->step);
  return 0;
}
