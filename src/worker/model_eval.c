/* Evaluating a model on a dataset (see model_eval.h). */
#include "model_eval.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

void model_fill_targets(dt_model_t *m, target_kind target, const int32_t *labels, float *targets,
                        int batch) {
  size_t out = dt_model_output_size(m);
  if (target == TARGET_ONE_HOT) {
    memset(targets, 0, sizeof(float) * out * (size_t)batch);
    for (int b = 0; b < batch; b++) targets[(size_t)b * out + (size_t)labels[b]] = 1.0f;
  } else if (target == TARGET_BITS) {
    for (int b = 0; b < batch; b++)
      for (size_t i = 0; i < out; i++)
        targets[(size_t)b * out + i] = (float)((labels[b] >> i) & 1);
  } else if (target == TARGET_INPUT) {
    memcpy(targets, m->acts[0], sizeof(float) * out * (size_t)batch);
  }
}

int model_evaluate(const model_eval_env_t *env, const dt_dataset_t *ds, eval_result_t *out,
                   dt_error_t *err) {
  dt_model_t *m = env->model;
  int world = env->comm->world, rank = env->comm->rank;
  /* Each rank evaluates a contiguous share; the sums are added up across ranks. */
  size_t begin = ds->n * (size_t)rank / (size_t)world;
  size_t end = ds->n * (size_t)(rank + 1) / (size_t)world;
  /* loss * samples, correct, accuracy total, samples, samples with every output right,
   * absolute errors (regression) */
  double sums[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  /* ... and the layers' loss terms * samples, weighted and raw. */
  const bool aux = dt_model_has_aux_loss(m);
  bool regression = !(env->mio && env->mio->n > 1) && env->target == TARGET_VALUES &&
                    (m->loss == DT_LOSS_MSE || m->loss == DT_LOSS_MAE);
  uint32_t idx[1024];
  int rc;
  multi_io_t *mio = env->mio;
  if (mio && mio->n > 1) memset(&out->outs, 0, sizeof out->outs);
  for (size_t pos = begin; pos < end;) {
    int chunk = (int)(end - pos < (size_t)m->capacity ? end - pos : (size_t)m->capacity);
    if (chunk > 1024) chunk = 1024;
    for (int i = 0; i < chunk; i++) idx[i] = (uint32_t)(pos + (size_t)i);
    if (mio && mio->n > 1) {
      /* Several outputs: each its own loss, weighted; the inputs scattered per input. */
      if ((rc = dt_dataset_gather(ds, env->scaling, idx, (size_t)chunk, mio->x, NULL,
                                  mio->values, err)))
        return rc;
      dt_model_set_inputs(m, mio->x, chunk);
      multi_io_fill(mio, mio->values, chunk);
      dt_model_forward(m, chunk, false, env->rng);
      multi_io_sums_t one;
      memset(&one, 0, sizeof one);
      sums[0] += multi_io_loss(mio, m, chunk, false, &one) * chunk;
      for (int k = 0; k < m->nout; k++) {
        out->outs.loss[k] += one.loss[k] * chunk;
        out->outs.correct[k] += one.correct[k];
        out->outs.total[k] += one.total[k];
      }
      sums[3] += chunk;
      pos += (size_t)chunk;
      continue;
    }
    float *x = m->nin > 1 && mio ? mio->x : m->acts[0];
    if ((rc = dt_dataset_gather(ds, env->scaling, idx, (size_t)chunk, x, env->labels,
                                env->target == TARGET_VALUES ? env->targets : NULL, err)))
      return rc;
    if (x != m->acts[0]) dt_model_set_inputs(m, x, chunk);
    model_fill_targets(m, env->target, env->labels, env->targets, chunk);
    const float *y = dt_model_forward(m, chunk, false, env->rng);
    int dim = (int)dt_model_output_size(m);
    sums[0] += dt_loss_compute(m->loss, y, chunk, dim, env->labels, env->targets, NULL) * chunk;
    if (aux) {
      double weighted, raw;
      if ((rc = dt_model_aux_loss(m, chunk, &weighted, &raw, err))) return rc;
      sums[6] += weighted * chunk;
      sums[7] += raw * chunk;
    }
    if (env->target == TARGET_BITS)
      for (int b = 0; b < chunk; b++) {
        bool all = true;
        for (int i = 0; i < dim; i++)
          all &= (y[b * dim + i] > 0.0f) == (env->targets[b * dim + i] > 0.5f);
        sums[4] += all;
      }
    for (int i = 0; regression && i < chunk * dim; i++) sums[5] += fabs(y[i] - env->targets[i]);
    size_t total;
    sums[1] += (double)dt_loss_count_correct(m->loss, y, chunk, dim, env->labels, env->targets,
                                             &total);
    sums[2] += (double)total;
    sums[3] += chunk;
    pos += (size_t)chunk;
  }
  if ((rc = dt_comm_allreduce_sum_f64(env->comm, sums, 8, err))) return rc;
  if (mio && mio->n > 1) {
    if ((rc = dt_comm_allreduce_sum_f64(env->comm, (double *)&out->outs,
                                        sizeof out->outs / sizeof(double), err)))
      return rc;
    out->outs_n = sums[3];
  }
  out->samples = (size_t)sums[3];
  out->loss = sums[3] > 0 ? (sums[0] + sums[6]) / sums[3] : NAN;
  out->reconstruction = aux && sums[3] > 0 ? sums[0] / sums[3] : NAN;
  out->kl = aux && sums[3] > 0 ? sums[6] / sums[3] : NAN;
  out->kl_raw = aux && sums[3] > 0 ? sums[7] / sums[3] : NAN;
  out->neg_elbo = aux && m->loss == DT_LOSS_BCE_LOGITS && env->target == TARGET_INPUT
                      ? out->reconstruction * (double)dt_model_output_size(m) + out->kl_raw
                      : NAN;
  out->accuracy = sums[2] > 0 ? sums[1] / sums[2] : NAN;
  out->exact = env->target == TARGET_BITS && sums[3] > 0 ? sums[4] / sums[3] : NAN;
  out->mae = regression && sums[3] > 0 ? sums[5] / (sums[3] * (double)dt_model_output_size(m))
                                       : NAN;
  return 0;
}
