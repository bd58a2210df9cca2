/* The exchange of a synchronous multi-rank job: gradients are averaged across ranks in
 * buckets that start during backward (dt_grad_sync), then every rank runs the same
 * optimizer step on the same gradients, so the replicas stay bit-identical. */
#include <stdlib.h>

#include "agreement.h"
#include "dtrain/grad_sync.h"
#include "exchange.h"

typedef struct {
  dt_config_t *cfg;
  double bucket_mb;
  dt_comm_t *comm;
  const dt_log_t *log;
  dt_model_t *model;
  dt_optim_t *optim;
  dt_grad_sync_t sync;
  bool resume; /* --resume was given: part of the agreement check */
} allreduce_t;

/* The ranks check whether a stop was asked for every this many steps: an all-reduce of
 * one number, cheap next to 16 steps, and a signal waits at most that long. */
enum { STOP_POLL_STEPS = 16 };

static int open_allreduce(void **self, const exchange_env_t *env, dt_dataset_t *train,
                          dt_error_t *err) {
  (void)train;
  allreduce_t *a = calloc(1, sizeof *a);
  if (!(*self = a)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the exchange");
  a->cfg = env->cfg;
  a->bucket_mb = env->opt->bucket_mb;
  a->comm = env->comm;
  a->log = env->log;
  a->model = env->model;
  a->optim = env->optim;
  a->resume = env->opt->resume;
  return 0;
}

/* Buckets over the gradient buffer, then the start-of-job check that every rank is
 * about to train the same model the same way (the buckets must match too). */
static int prepare(void *self, long steps_per_epoch, dt_error_t *err) {
  allreduce_t *a = self;
  dt_model_t *m = a->model;
  int rc = dt_grad_sync_init(&a->sync, a->comm, m->grad_buf, m->num_params, a->bucket_mb, err);
  if (rc) return rc;
  run_shape_t shape = {m->num_params, steps_per_epoch, a->sync.nbuckets, a->resume};
  return agreement_check(a->comm, a->cfg, &shape, err);
}

/* buf[begin, end) is final once `ready` completes; dt_grad_sync waits for it. */
static void grads_ready(void *self, size_t begin, size_t end, dt_device_event_t *ready) {
  allreduce_t *a = self;
  dt_grad_sync_ready(&a->sync, begin, end, ready);
}

static void begin_step(void *self, long step) {
  allreduce_t *a = self;
  dt_grad_sync_begin(&a->sync, step);
}

static int reduce(void *self, dt_error_t *err) {
  allreduce_t *a = self;
  return dt_grad_sync_finish(&a->sync, err);
}

static int update(void *self, float lr, dt_error_t *err) {
  (void)err;
  allreduce_t *a = self;
  exchange_optimizer_step(a->model, a->optim, lr);
  return 0;
}

/* A signal may reach the ranks at different moments, or only some of them: they agree,
 * every STOP_POLL_STEPS steps, so that all stop after the same step. */
static int agree_stop(void *self, long step, bool requested, bool *stop, dt_error_t *err) {
  allreduce_t *a = self;
  *stop = false;
  if (step % STOP_POLL_STEPS != 0) return 0;
  double flag = requested;
  int rc = dt_comm_allreduce_sum_f64(a->comm, &flag, 1, err);
  *stop = flag > 0;
  return rc;
}

/* Batch norm's moving averages follow each rank's own batches; their average makes every
 * rank evaluate, and save, the same model (TF's MirroredStrategy does so too). Training
 * itself uses batch statistics, so this changes no gradient. */
static int sync_state(void *self, dt_error_t *err) {
  allreduce_t *a = self;
  dt_model_t *m = a->model;
  return m->num_states ? dt_comm_allreduce_avg(a->comm, m->state_buf, m->num_states, err) : 0;
}

static void report(void *self, const exchange_stats_t *st) {
  allreduce_t *a = self;
  if (st->steps <= 0) return;
  dt_log_info(a->log, "Sync: %d ranks, %d gradient bucket(s) of up to %.2f MB; waiting for "
              "gradients after backward: %.3f ms/step, %.1f%% of step time", a->comm->world,
              a->sync.nbuckets, (double)a->sync.bucket * sizeof(float) / (1 << 20),
              1e3 * st->wait_s / (double)st->steps, 100.0 * st->wait_s / st->step_s);
}

const exchange_ops_t exchange_allreduce_ops = {.name = "allreduce",
                                               .open = open_allreduce,
                                               .prepare = prepare,
                                               .grads_ready = grads_ready,
                                               .begin_step = begin_step,
                                               .reduce = reduce,
                                               .update = update,
                                               .agree_stop = agree_stop,
                                               .sync_state = sync_state,
                                               .report = report,
                                               .free = free};
