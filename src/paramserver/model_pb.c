/* ps_model_t <-> dtrain.ps.Init (see model_pb.h). */
#define _POSIX_C_SOURCE 200809L
#include "model_pb.h"

#include <stdio.h>
#include <stdlib.h>

int ps_model_from_init(const Dtrain__Ps__Init *in, ps_model_t *out, dt_param_info_t **tensors,
                       dt_error_t *err) {
  int nt = (int)in->n_tensors;
  dt_param_info_t *t = calloc(nt > 0 ? (size_t)nt : 1, sizeof *t);
  if (!t) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %d tensors", nt);
  for (int i = 0; i < nt; i++) {
    const Dtrain__Ps__Tensor *pt = in->tensors[i];
    snprintf(t[i].name, sizeof t[i].name, "%s", pt->name);
    t[i].shape.ndim = (int)pt->n_shape;
    for (size_t d = 0; d < pt->n_shape; d++) t[i].shape.dims[d] = (int)pt->shape[d];
    t[i].offset = (size_t)pt->offset;
    t[i].count = (size_t)pt->count;
    t[i].decay = pt->decay;
  }
  const Dtrain__Ps__Optimizer *po = in->optimizer;
  *out = (ps_model_t){
      .signature = in->signature, .num_params = in->num_params,
      .server_index = in->server_index, .num_servers = in->num_servers,
      .tensors = t, .ntensors = nt,
      .optim = {.kind = (dt_optim_kind)po->kind, .momentum = po->momentum,
                .nesterov = po->nesterov, .beta1 = po->beta1, .beta2 = po->beta2,
                .rho = po->rho, .eps = po->epsilon, .weight_decay = po->weight_decay}};
  *tensors = t;
  return 0;
}

int ps_model_pack(const ps_model_t *m, uint8_t **out, size_t *len, dt_error_t *err) {
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  Dtrain__Ps__Optimizer o = DTRAIN__PS__OPTIMIZER__INIT;
  size_t nt = m->ntensors > 0 ? (size_t)m->ntensors : 1;
  Dtrain__Ps__Tensor *ts = calloc(nt, sizeof *ts);
  Dtrain__Ps__Tensor **tp = calloc(nt, sizeof *tp);
  uint32_t *dims = calloc(nt * DT_MAX_DIMS, sizeof *dims);
  int rc = 0;
  if (!ts || !tp || !dims) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    goto done;
  }
  for (int i = 0; i < m->ntensors; i++) {
    const dt_param_info_t *t = &m->tensors[i];
    dtrain__ps__tensor__init(&ts[i]);
    ts[i].name = (char *)(uintptr_t)t->name;
    ts[i].n_shape = (size_t)t->shape.ndim;
    ts[i].shape = dims + (size_t)i * DT_MAX_DIMS;
    for (int d = 0; d < t->shape.ndim; d++) ts[i].shape[d] = (uint32_t)t->shape.dims[d];
    ts[i].offset = t->offset;
    ts[i].count = t->count;
    ts[i].decay = t->decay;
    tp[i] = &ts[i];
  }
  o.kind = (uint32_t)m->optim.kind;
  o.momentum = m->optim.momentum;
  o.nesterov = m->optim.nesterov;
  o.beta1 = m->optim.beta1;
  o.beta2 = m->optim.beta2;
  o.rho = m->optim.rho;
  o.epsilon = m->optim.eps;
  o.weight_decay = m->optim.weight_decay;
  in.signature = m->signature;
  in.num_params = m->num_params;
  in.server_index = m->server_index;
  in.num_servers = m->num_servers;
  in.n_tensors = (size_t)m->ntensors;
  in.tensors = tp;
  in.optimizer = &o;
  *len = protobuf_c_message_get_packed_size(&in.base);
  if (!(*out = malloc(*len ? *len : 1))) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint");
    goto done;
  }
  protobuf_c_message_pack(&in.base, *out);
done:
  free(ts);
  free(tp);
  free(dims);
  return rc;
}
