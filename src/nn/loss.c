/* Loss functions and accuracy counting. Sums run in double: a batch of logits
 * summed in float loses digits that the tests (and long runs) notice. */
#include "dtrain/loss.h"

#include <math.h>

const char *const dt_loss_names[] = {"sparse_categorical_crossentropy", "binary_crossentropy",
                                     "mse", "mae", NULL};

int dt_loss_uses_labels(dt_loss_kind kind) { return kind == DT_LOSS_SOFTMAX_CE; }

/* Softmax cross-entropy of one row: log-sum-exp shifted by the max. */
static double softmax_ce_row(const float *z, int dim, int label, float *dz, float scale) {
  float mx = z[0];
  for (int i = 1; i < dim; i++) mx = z[i] > mx ? z[i] : mx;
  double sum = 0.0;
  for (int i = 0; i < dim; i++) sum += exp((double)(z[i] - mx));
  double log_sum = log(sum);
  if (dz) {
    for (int i = 0; i < dim; i++) {
      double p = exp((double)(z[i] - mx) - log_sum);
      dz[i] = (float)((p - (i == label ? 1.0 : 0.0)) * scale);
    }
  }
  return log_sum - (double)(z[label] - mx);
}

/* BCE from a logit z and target t: max(z,0) - z t + log(1 + exp(-|z|)). */
static double bce_logit(float z, float t, float *dz, float scale) {
  double zd = z;
  double loss = (zd > 0 ? zd : 0) - zd * t + log1p(exp(-fabs(zd)));
  if (dz) {
    double s = zd >= 0 ? 1.0 / (1.0 + exp(-zd)) : exp(zd) / (1.0 + exp(zd));
    *dz = (float)((s - t) * scale);
  }
  return loss;
}

double dt_loss_compute(dt_loss_kind kind, const float *out, int batch, int dim,
                       const int32_t *labels, const float *targets, float *dout) {
  if (batch <= 0) return 0.0;
  double total = 0.0;
  const float inv_batch = 1.0f / (float)batch;
  /* The element-wise losses average over batch * dim, as Keras does per sample then batch. */
  const float inv_elems = 1.0f / ((float)batch * (float)dim);
  size_t n = (size_t)batch * (size_t)dim;
  switch (kind) {
    case DT_LOSS_SOFTMAX_CE:
      for (int b = 0; b < batch; b++)
        total += softmax_ce_row(out + (size_t)b * dim, dim, labels[b],
                                dout ? dout + (size_t)b * dim : NULL, inv_batch);
      return total / batch;
    case DT_LOSS_BCE_LOGITS:
      for (size_t i = 0; i < n; i++)
        total += bce_logit(out[i], targets[i], dout ? dout + i : NULL, inv_elems);
      return total / (double)n;
    case DT_LOSS_MSE:
      for (size_t i = 0; i < n; i++) {
        float d = out[i] - targets[i];
        total += (double)d * d;
        if (dout) dout[i] = 2.0f * d * inv_elems;
      }
      return total / (double)n;
    case DT_LOSS_MAE:
      for (size_t i = 0; i < n; i++) {
        float d = out[i] - targets[i];
        total += fabs((double)d);
        /* The subgradient at 0 is taken as 0. */
        if (dout) dout[i] = (d > 0 ? 1.0f : d < 0 ? -1.0f : 0.0f) * inv_elems;
      }
      return total / (double)n;
  }
  return 0.0;
}

size_t dt_loss_count_correct(dt_loss_kind kind, const float *out, int batch, int dim,
                             const int32_t *labels, const float *targets, size_t *total) {
  size_t correct = 0;
  if (kind == DT_LOSS_SOFTMAX_CE) {
    for (int b = 0; b < batch; b++) {
      const float *row = out + (size_t)b * dim;
      int best = 0;
      for (int i = 1; i < dim; i++)
        if (row[i] > row[best]) best = i;
      correct += best == labels[b];
    }
    *total = (size_t)batch;
  } else if (kind == DT_LOSS_BCE_LOGITS) {
    size_t n = (size_t)batch * (size_t)dim;
    for (size_t i = 0; i < n; i++) correct += (out[i] > 0.0f) == (targets[i] > 0.5f);
    *total = n;
  } else {
    *total = 0;
  }
  return correct;
}
