/* The exchange of a parameter-server worker (sync.mode = ps): the servers run the
 * optimizer; after backward the gradient goes out and parameters come back (ps_sync.h).
 * The worker trains on its own part of the training set, the one of its id (known when
 * it opens, or once the servers assigned it at start), and logs to TensorBoard in a
 * run of its own, worker-<id>: workers started together share the run's name. */
#include <stdio.h>
#include <stdlib.h>

#include "exchange.h"
#include "ps_sync.h"

typedef struct {
  dt_model_t *model;
  const dt_optim_config_t *optim;
  double timeout_s;
  ps_sync_t ps;
  char log_name[32];
} ps_exchange_t;

static int open_ps(void **self, const exchange_env_t *env, dt_dataset_t *train,
                   dt_error_t *err) {
  ps_exchange_t *p = calloc(1, sizeof *p);
  if (!(*self = p)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the exchange");
  p->model = env->model;
  p->optim = &env->optim->cfg;
  p->timeout_s = env->opt->timeout_s;
  return ps_sync_setup(&p->ps, env->cfg, train, env->comm->world, env->hooks->ps_delay_ms,
                       env->log, err);
}

/* After a --resume, so that the servers' parameters win over the checkpoint's. */
static int start(void *self, dt_error_t *err) {
  ps_exchange_t *p = self;
  return ps_sync_start(&p->ps, p->model, p->optim, p->timeout_s, err);
}

static const char *log_name(void *self) {
  ps_exchange_t *p = self;
  snprintf(p->log_name, sizeof p->log_name, "worker-%ld", p->ps.worker_id);
  return p->log_name;
}

static int update(void *self, float lr, dt_error_t *err) {
  ps_exchange_t *p = self;
  return ps_sync_step(&p->ps, p->model, lr, err);
}

static int leave(void *self, dt_error_t *err) {
  ps_exchange_t *p = self;
  return ps_sync_leave(&p->ps, p->model, err);
}

static int finish(void *self, dt_error_t *err) {
  ps_exchange_t *p = self;
  return ps_sync_finish(&p->ps, p->model, err);
}

static void report(void *self, const exchange_stats_t *stats) {
  (void)stats;
  ps_exchange_t *p = self;
  ps_sync_report(&p->ps);
}

static void free_ps(void *self) {
  ps_exchange_t *p = self;
  ps_sync_free(&p->ps);
  free(p);
}

const exchange_ops_t exchange_ps_ops = {.name = "ps",
                                        .open = open_ps,
                                        .start = start,
                                        .log_name = log_name,
                                        .update = update,
                                        .leave = leave,
                                        .finish = finish,
                                        .report = report,
                                        .free = free_ps};
