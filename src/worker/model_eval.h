/* Evaluating a model on a dataset: the loss and the metrics the trainer reports (accuracy,
 * mae, all bits right), computed the same way for the test set at the end of a run, for
 * validation every epoch, and by `dtrain-worker evaluate` on a saved model. */
#ifndef DTRAIN_WORKER_MODEL_EVAL_H
#define DTRAIN_WORKER_MODEL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/comm.h"
#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"
#include "multi_io.h"

/* What a loss with float targets is trained against. */
/* bits: output i is trained on bit i of the label (the binary-addition task). */
/* values: the data's own target values (regression, or 0/1 for one sigmoid unit). */
typedef enum { TARGET_LABELS, TARGET_ONE_HOT, TARGET_INPUT, TARGET_BITS, TARGET_VALUES } target_kind;

typedef struct {
  double loss, accuracy; /* accuracy is NaN for losses without one */
  double exact;          /* target = bits: the share of samples with every bit right */
  double mae;            /* regression (mse/mae on target values): mean absolute error, else NaN */
  /* A model whose layers add loss terms (a VAE's KL): loss = reconstruction + kl, where
   * reconstruction is the loss function's part and kl the layers' weighted terms, and
   * kl_raw the same without their weights; all NaN for other models. */
  double reconstruction, kl, kl_raw;
  /* A VAE trained with binary_crossentropy on target = input: the negative ELBO in nats
   * per sample, the reconstruction summed over the outputs plus kl_raw; else NaN. */
  double neg_elbo;
  size_t samples;
  /* Several outputs: per-output loss sums and accuracy counts over outs_n samples. */
  multi_io_sums_t outs;
  double outs_n;
} eval_result_t;

/* What an evaluation runs with: the model (prepared for a batch capacity), what its
 * loss is trained against, the inputs' scaling, the ranks that share the work, and
 * scratch for a batch's labels (capacity) and float targets (capacity, out; NULL when
 * the target is labels). */
typedef struct {
  dt_model_t *model;
  target_kind target;
  const dt_scaling_t *scaling;
  dt_comm_t *comm;
  int32_t *labels;
  float *targets;
  dt_rng_t *rng; /* the noise of stochastic layers (a VAE's sampling); NULL: none */
  multi_io_t *mio; /* a model with several outputs (or inputs): its buffers, else NULL */
} model_eval_env_t;

/* Fills targets (batch, out) for a batch whose inputs are in the model's acts[0] and
 * labels in labels: one-hot rows, the label's bits, or the input itself. */
void model_fill_targets(dt_model_t *m, target_kind target, const int32_t *labels, float *targets,
                        int batch);

/* Loss and metrics of the model on ds, with this rank's share reduced across ranks. */
int model_evaluate(const model_eval_env_t *env, const dt_dataset_t *ds, eval_result_t *out,
                   dt_error_t *err);

#endif
