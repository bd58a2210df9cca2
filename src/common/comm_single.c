/* The single-process communicator: with one rank, a broadcast or a reduction leaves
 * the buffer as it is. */
#include "dtrain/comm.h"

static int broadcast(dt_comm_t *c, void *buf, size_t bytes, int root, dt_error_t *err) {
  (void)c, (void)buf, (void)bytes, (void)err;
  return root == 0 ? 0 : dt_error_set(err, DT_ERR_ARG, "broadcast from rank %d of 1", root);
}
static int allreduce_avg(dt_comm_t *c, float *buf, size_t count, dt_error_t *err) {
  (void)c, (void)buf, (void)count, (void)err;
  return 0;
}
static int allreduce_sum_f64(dt_comm_t *c, double *buf, size_t count, dt_error_t *err) {
  (void)c, (void)buf, (void)count, (void)err;
  return 0;
}
static int barrier(dt_comm_t *c, dt_error_t *err) {
  (void)c, (void)err;
  return 0;
}
static void finalize(dt_comm_t *c) { (void)c; }

static const dt_comm_ops_t single_ops = {.name = "single",
                                         .broadcast = broadcast,
                                         .allreduce_avg = allreduce_avg,
                                         .allreduce_sum_f64 = allreduce_sum_f64,
                                         .barrier = barrier,
                                         .finalize = finalize};

void dt_comm_init_single(dt_comm_t *c) {
  c->ops = &single_ops;
  c->rank = 0;
  c->world = 1;
  c->impl = 0;
}
