/* Optimizer update rules over ranges of the flat parameter vector (see optim.h). */
#include "dtrain/optim.h"

#include "dtrain/hot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const dt_optim_names[] = {"sgd", "adam", "rmsprop", "adadelta", NULL};

dt_optim_config_t dt_optim_defaults(dt_optim_kind kind) {
  dt_optim_config_t c = {.kind = kind, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-7};
  c.rho = kind == DT_OPT_ADADELTA ? 0.95 : 0.9;
  return c;
}

int dt_optim_config_read(dt_config_t *cfg, dt_optim_config_t *out, dt_error_t *err) {
  int kind, rc;
  if ((rc = dt_config_get_choice(cfg, "optimizer", "type", "sgd", dt_optim_names, &kind, err)))
    return rc;
  dt_optim_config_t c = dt_optim_defaults((dt_optim_kind)kind);
  if ((rc = dt_config_get_double(cfg, "optimizer", "weight_decay", 0.0, 0.0, 1.0,
                                 &c.weight_decay, err)) ||
      (rc = dt_config_get_double(cfg, "optimizer", "epsilon", c.eps, 0.0, 1.0, &c.eps, err)))
    return rc;
  /* Only the keys of the chosen kind are read, so a key of another kind is reported
   * as unknown by the unused-key check instead of being silently ignored. */
  switch (c.kind) {
    case DT_OPT_SGD:
      if ((rc = dt_config_get_double(cfg, "optimizer", "momentum", 0.0, 0.0, 0.999999,
                                     &c.momentum, err)) ||
          (rc = dt_config_get_bool(cfg, "optimizer", "nesterov", false, &c.nesterov, err)))
        return rc;
      break;
    case DT_OPT_ADAM:
      if ((rc = dt_config_get_double(cfg, "optimizer", "beta1", c.beta1, 0.0, 0.999999, &c.beta1,
                                     err)) ||
          (rc = dt_config_get_double(cfg, "optimizer", "beta2", c.beta2, 0.0, 0.999999999,
                                     &c.beta2, err)))
        return rc;
      break;
    case DT_OPT_RMSPROP:
    case DT_OPT_ADADELTA:
      if ((rc = dt_config_get_double(cfg, "optimizer", "rho", c.rho, 0.0, 0.999999, &c.rho, err)))
        return rc;
      break;
  }
  *out = c;
  return 0;
}

int dt_optim_num_moments(const dt_optim_t *o) {
  switch (o->cfg.kind) {
    case DT_OPT_SGD: return o->cfg.momentum > 0.0 ? 1 : 0;
    case DT_OPT_RMSPROP: return 1;
    case DT_OPT_ADAM:
    case DT_OPT_ADADELTA: return 2;
  }
  return 0;
}

int dt_optim_init(dt_optim_t *o, const dt_optim_config_t *cfg, size_t n, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  o->cfg = *cfg;
  o->n = n;
  int k = dt_optim_num_moments(o);
  if (k >= 1 && !(o->moment1 = calloc(n ? n : 1, sizeof(float))))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %zu optimizer moments", n);
  if (k >= 2 && !(o->moment2 = calloc(n ? n : 1, sizeof(float)))) {
    dt_optim_free(o);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %zu optimizer moments", n);
  }
  return 0;
}

void dt_optim_free(dt_optim_t *o) {
  free(o->moment1);
  free(o->moment2);
  o->moment1 = o->moment2 = NULL;
}

void dt_optim_begin_step(dt_optim_t *o) { o->step++; }

/* One contiguous segment with a single weight-decay value. */
DT_HOT_LOOP static void update_segment(dt_optim_t *o, float *w, const float *g, size_t begin, size_t end,
                           float lr, float wd) {
  const dt_optim_config_t *c = &o->cfg;
  switch (c->kind) {
    case DT_OPT_SGD: {
      const float mom = (float)c->momentum;
      if (mom == 0.0f) {
        for (size_t i = begin; i < end; i++) w[i] -= lr * (g[i] + wd * w[i]);
        break;
      }
      float *buf = o->moment1;
      if (c->nesterov) {
        for (size_t i = begin; i < end; i++) {
          float gi = g[i] + wd * w[i];
          buf[i] = mom * buf[i] + gi;
          w[i] -= lr * (gi + mom * buf[i]);
        }
      } else {
        for (size_t i = begin; i < end; i++) {
          buf[i] = mom * buf[i] + g[i] + wd * w[i];
          w[i] -= lr * buf[i];
        }
      }
      break;
    }
    case DT_OPT_ADAM: {
      const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
      const float c1 = (float)(1.0 / (1.0 - pow(c->beta1, (double)o->step)));
      const float c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)o->step)));
      float *m = o->moment1, *v = o->moment2;
      for (size_t i = begin; i < end; i++) {
        float gi = g[i] + wd * w[i];
        /* 1 - beta in double: 1.0f - (float)0.999 is off by 1.3e-5 relative. */
        m[i] = b1 * m[i] + (float)(1.0 - c->beta1) * gi;
        v[i] = b2 * v[i] + (float)(1.0 - c->beta2) * gi * gi;
        w[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
      }
      break;
    }
    case DT_OPT_RMSPROP: {
      const float rho = (float)c->rho, eps = (float)c->eps;
      float *v = o->moment1;
      for (size_t i = begin; i < end; i++) {
        float gi = g[i] + wd * w[i];
        v[i] = rho * v[i] + (1.0f - rho) * gi * gi;
        w[i] -= lr * gi / (sqrtf(v[i]) + eps);
      }
      break;
    }
    case DT_OPT_ADADELTA: {
      const float rho = (float)c->rho, eps = (float)c->eps;
      float *eg = o->moment1, *ed = o->moment2;
      for (size_t i = begin; i < end; i++) {
        float gi = g[i] + wd * w[i];
        eg[i] = rho * eg[i] + (1.0f - rho) * gi * gi;
        float d = sqrtf(ed[i] + eps) / sqrtf(eg[i] + eps) * gi;
        ed[i] = rho * ed[i] + (1.0f - rho) * d * d;
        w[i] -= lr * d;
      }
      break;
    }
  }
}

/* [begin, end) on the calling thread. */
static void update_range(dt_optim_t *o, float *params, const float *grads, size_t begin,
                         size_t end, float lr, const dt_param_info_t *tensors, int ntensors) {
  const float wd = (float)o->cfg.weight_decay;
  if (wd == 0.0f || !tensors) {
    update_segment(o, params, grads, begin, end, lr, 0.0f);
    return;
  }
  /* Walk the tensors that overlap [begin, end); gaps between tensors (none in practice)
   * get no decay. */
  size_t pos = begin;
  for (int t = 0; t < ntensors && pos < end; t++) {
    size_t tb = tensors[t].offset, te = tensors[t].offset + tensors[t].count;
    if (te <= pos || tb >= end) continue;
    if (tb > pos) update_segment(o, params, grads, pos, tb, lr, 0.0f);
    size_t sb = tb > pos ? tb : pos, se = te < end ? te : end;
    update_segment(o, params, grads, sb, se, lr, tensors[t].decay ? wd : 0.0f);
    pos = se;
  }
  if (pos < end) update_segment(o, params, grads, pos, end, lr, 0.0f);
}

typedef struct {
  dt_optim_t *o;
  float *params;
  const float *grads;
  size_t begin;
  float lr;
  const dt_param_info_t *tensors;
  int ntensors;
} update_job_t;

static void update_chunk(void *arg, size_t b, size_t e) {
  const update_job_t *j = arg;
  update_range(j->o, j->params, j->grads, j->begin + b, j->begin + e, j->lr, j->tensors,
               j->ntensors);
}

/* Chunks of at least 32K parameters: an update reads and writes a few arrays of them,
 * some 10 microseconds of work, well above the cost of handing it to a thread. */
enum { UPDATE_GRAIN = 1 << 15 };

void dt_optim_update(dt_optim_t *o, float *params, const float *grads, size_t begin, size_t end,
                     float lr, const dt_param_info_t *tensors, int ntensors) {
  if (end <= begin) return;
  update_job_t j = {o, params, grads, begin, lr, tensors, ntensors};
  dt_parallel_for(&o->parallel, end - begin, UPDATE_GRAIN, update_chunk, &j);
}
