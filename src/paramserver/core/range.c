/* The range's values and optimizer (see range.h). */
#define _POSIX_C_SOURCE 200809L
#include "range.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps_range.h"

int ps_range_init(ps_range_t *r, const ps_model_t *m, const float *params, dt_error_t *err) {
  memset(r, 0, sizeof *r);
  uint64_t sig = dt_ps_signature(m->tensors, m->ntensors, m->num_params, &m->optim);
  if (sig != m->signature)
    return dt_error_set(err, DT_ERR_MISMATCH,
                        "INIT's signature %016" PRIx64 " is not that of its own tensors and "
                        "optimizer (%016" PRIx64 ")", m->signature, sig);
  int nt = m->ntensors;
  dt_param_info_t *t = calloc(nt > 0 ? (size_t)nt : 1, sizeof *t);
  dt_param_info_t *local = calloc(nt > 0 ? (size_t)nt : 1, sizeof *local);
  uint64_t b, e;
  dt_ps_range(m->num_params, m->num_servers, m->server_index, &b, &e);
  size_t n = (size_t)(e - b);
  float *p = malloc((n ? n : 1) * sizeof *p);
  int rc = 0;
  if (!t || !local || !p)
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory for a range of %zu parameters", n);
  else
    rc = dt_optim_init(&r->optim, &m->optim, n, err);
  if (rc) {
    free(t);
    free(local);
    free(p);
    return rc;
  }
  if (nt > 0) memcpy(t, m->tensors, (size_t)nt * sizeof *t);
  /* The range's part of each tensor, with offsets from the range's start: weight
   * decay then applies to exactly the kernels' elements that live here. */
  int nl = 0;
  for (int i = 0; i < nt; i++) {
    uint64_t tb = t[i].offset, te = t[i].offset + t[i].count;
    if (te <= b || tb >= e) continue;
    local[nl] = t[i];
    uint64_t lb = tb > b ? tb : b, le = te < e ? te : e;
    local[nl].offset = (size_t)(lb - b);
    local[nl].count = (size_t)(le - lb);
    nl++;
  }
  if (params) memcpy(p, params, n * sizeof *p);
  r->signature = sig;
  r->num_params = m->num_params;
  r->index = m->server_index;
  r->nservers = m->num_servers;
  r->begin = b;
  r->end = e;
  r->n = n;
  r->tensors = t;
  r->ntensors = nt;
  r->local = local;
  r->nlocal = nl;
  r->ocfg = m->optim;
  r->params = p;
  r->version = 0;
  return 0;
}

void ps_range_free(ps_range_t *r) {
  free(r->tensors);
  free(r->local);
  free(r->params);
  dt_optim_free(&r->optim);
  memset(r, 0, sizeof *r);
}

void ps_range_apply(ps_range_t *r, const float *grad, float lr) {
  dt_optim_begin_step(&r->optim);
  dt_optim_update(&r->optim, r->params, grad, 0, r->n, lr, r->local, r->nlocal);
  r->version++;
}

ps_model_t ps_range_model(const ps_range_t *r) {
  return (ps_model_t){.signature = r->signature, .num_params = r->num_params,
                      .server_index = r->index, .num_servers = r->nservers,
                      .tensors = r->tensors, .ntensors = r->ntensors, .optim = r->ocfg};
}
