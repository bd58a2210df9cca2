/* The exchange of a single process: nothing to exchange, the optimizer runs here. */
#include <stdlib.h>

#include "exchange.h"

typedef struct {
  dt_model_t *model;
  dt_optim_t *optim;
} single_t;

static int open_single(void **self, const exchange_env_t *env, dt_dataset_t *train,
                       dt_error_t *err) {
  (void)train;
  single_t *s = calloc(1, sizeof *s);
  if (!(*self = s)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the exchange");
  s->model = env->model;
  s->optim = env->optim;
  return 0;
}

static int update(void *self, float lr, dt_error_t *err) {
  (void)err;
  single_t *s = self;
  exchange_optimizer_step(s->model, s->optim, lr);
  return 0;
}

const exchange_ops_t exchange_single_ops = {
    .name = "single", .open = open_single, .update = update, .free = free};
