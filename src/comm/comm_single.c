/* The single-process communicator: with one rank, a broadcast or a reduction leaves
 * the buffer as it is, and nothing ever waits, so the watchdog has nothing to do. */
#include <string.h>

#include "dtrain/comm.h"

static int broadcast(dt_comm_t *c, void *buf, size_t bytes, int root, dt_error_t *err) {
  (void)c, (void)buf, (void)bytes, (void)err;
  return root == 0 ? 0 : dt_error_set(err, DT_ERR_ARG, "broadcast from rank %d of 1", root);
}
static int allreduce_sum_f64(dt_comm_t *c, double *buf, size_t count, dt_error_t *err) {
  (void)c, (void)buf, (void)count, (void)err;
  return 0;
}
static int allgather(dt_comm_t *c, const void *mine, void *all, size_t bytes, dt_error_t *err) {
  (void)c, (void)err;
  if (bytes) memmove(all, mine, bytes);
  return 0;
}
static int barrier(dt_comm_t *c, dt_error_t *err) {
  (void)c, (void)err;
  return 0;
}
static int start_allreduce_avg(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  (void)c, (void)buf, (void)count, (void)err;
  return 0;
}
static int progress(dt_comm_t *c, dt_error_t *err) {
  (void)c, (void)err;
  return 0;
}
static int wait_all(dt_comm_t *c, int *stuck, dt_error_t *err) {
  (void)c, (void)err;
  if (stuck) *stuck = -1;
  return 0;
}
static void set_step(dt_comm_t *c, long step) { (void)c, (void)step; }
static void abort_job(dt_comm_t *c, int code) { (void)c, (void)code; }
static void finalize(dt_comm_t *c) { (void)c; }

static const dt_comm_ops_t single_ops = {.name = "single",
                                         .broadcast = broadcast,
                                         .allreduce_sum_f64 = allreduce_sum_f64,
                                         .allgather = allgather,
                                         .barrier = barrier,
                                         .start_allreduce_avg = start_allreduce_avg,
                                         .progress = progress,
                                         .wait_all = wait_all,
                                         .set_step = set_step,
                                         .abort = abort_job,
                                         .finalize = finalize};

void dt_comm_init_single(dt_comm_t *c) {
  c->ops = &single_ops;
  c->rank = 0;
  c->world = 1;
  c->timeout_s = DT_COMM_DEFAULT_TIMEOUT_S;
  c->allreduce = DT_ALLREDUCE_RING;
  c->impl = NULL;
}
