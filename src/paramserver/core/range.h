/* The server's range [begin, end) of the flat parameter vector: its values, the
 * optimizer over them (the worker's own dt_optim code) and the version (updates
 * applied). Plain data and one update function; who may push when is the core's
 * business (ps_core.h), how it is saved the checkpoint's (ckpt.h). */
#ifndef DTRAIN_PS_RANGE_STATE_H
#define DTRAIN_PS_RANGE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/optim.h"
#include "dtrain/tensor.h"

/* The model as INIT (or a checkpoint's model.pb) describes it. */
typedef struct {
  uint64_t signature;   /* what the workers' HELLO must carry */
  uint64_t num_params;  /* of the whole model */
  uint32_t server_index, num_servers;
  const dt_param_info_t *tensors; /* (ntensors) the whole model's */
  int ntensors;
  dt_optim_config_t optim;
} ps_model_t;

typedef struct {
  uint64_t signature, num_params;
  uint32_t index, nservers;
  uint64_t begin, end;
  size_t n;                 /* end - begin */
  dt_param_info_t *tensors; /* (ntensors) the whole model's, for the signature */
  int ntensors;
  dt_param_info_t *local;   /* (nlocal) the tensors' parts in the range, offsets from begin */
  int nlocal;
  dt_optim_config_t ocfg;
  float *params;            /* (n) */
  dt_optim_t optim;         /* moments of (n) */
  uint64_t version;         /* updates applied */
} ps_range_t;

/* The range of m's split for m's server index, with params (n floats) as its values,
 * or uninitialized values when params is NULL (a checkpoint fills them). Fails with
 * DT_ERR_MISMATCH when m's signature is not that of its tensors and optimizer. */
int ps_range_init(ps_range_t *r, const ps_model_t *m, const float *params, dt_error_t *err);
void ps_range_free(ps_range_t *r);

/* One optimizer step of the range with grad (n floats) at learning rate lr; the
 * version counts it. */
void ps_range_apply(ps_range_t *r, const float *grad, float lr);

/* The model r was made from (its tensors point into r). */
ps_model_t ps_range_model(const ps_range_t *r);

#endif
