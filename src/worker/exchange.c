/* Choosing the exchange, and calling its operations (see exchange.h). */
#include "exchange.h"

#include <string.h>

int exchange_setup(exchange_t *x, const exchange_env_t *env, dt_dataset_t *train,
                   dt_error_t *err) {
  memset(x, 0, sizeof *x);
  /* The one place that looks at the mode: everything after goes through the table. */
  x->ops = env->opt->ps             ? &exchange_ps_ops
           : env->comm->world > 1 ? &exchange_allreduce_ops
                                  : &exchange_single_ops;
  x->model = env->model;
  return x->ops->open(&x->self, env, train, err);
}

int exchange_prepare(exchange_t *x, long steps_per_epoch, dt_error_t *err) {
  if (x->ops->grads_ready) {
    x->model->on_grads_ready = x->ops->grads_ready;
    x->model->grads_ready_ctx = x->self;
  }
  return x->ops->prepare ? x->ops->prepare(x->self, steps_per_epoch, err) : 0;
}

int exchange_start(exchange_t *x, dt_error_t *err) {
  return x->ops->start ? x->ops->start(x->self, err) : 0;
}

const char *exchange_log_name(exchange_t *x) {
  return x->ops->log_name ? x->ops->log_name(x->self) : NULL;
}

void exchange_begin_step(exchange_t *x, long step) {
  if (x->ops->begin_step) x->ops->begin_step(x->self, step);
}

int exchange_reduce(exchange_t *x, dt_error_t *err) {
  return x->ops->reduce ? x->ops->reduce(x->self, err) : 0;
}

int exchange_update(exchange_t *x, float lr, dt_error_t *err) {
  return x->ops->update(x->self, lr, err);
}

int exchange_agree_stop(exchange_t *x, long step, bool requested, bool *stop, dt_error_t *err) {
  *stop = requested;
  return x->ops->agree_stop ? x->ops->agree_stop(x->self, step, requested, stop, err) : 0;
}

int exchange_sync_state(exchange_t *x, dt_error_t *err) {
  return x->ops->sync_state ? x->ops->sync_state(x->self, err) : 0;
}

int exchange_leave(exchange_t *x, dt_error_t *err) {
  return x->ops->leave ? x->ops->leave(x->self, err) : 0;
}

int exchange_finish(exchange_t *x, dt_error_t *err) {
  return x->ops->finish ? x->ops->finish(x->self, err) : 0;
}

void exchange_report(exchange_t *x, const exchange_stats_t *stats) {
  if (x->ops->report) x->ops->report(x->self, stats);
}

void exchange_free(exchange_t *x) {
  /* A trainer whose setup failed early may have no exchange yet. */
  if (x->ops && x->self) x->ops->free(x->self);
  memset(x, 0, sizeof *x);
}

void exchange_optimizer_step(dt_model_t *m, dt_optim_t *o, float lr) {
  dt_optim_begin_step(o);
  dt_optim_update(o, m->param_buf, m->grad_buf, 0, m->num_params, lr, m->params, m->nparams);
}
