/* Several outputs in the trainer (see multi_io.h). */
#include "multi_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/loss.h"

int multi_io_setup(multi_io_t *h, const dt_model_t *m, const run_data_t *d, dt_config_t *cfg,
                   int capacity, dt_error_t *err) {
  memset(h, 0, sizeof *h);
  const dt_dataset_t *train = &d->file[SPLIT_TRAIN];
  h->n = m->nout;
  size_t cols = 0;
  for (int k = 0; k < m->nout; k++) {
    h->col[k] = cols;
    h->width[k] = dt_loss_uses_labels(m->outputs[k].loss) ? 1 : dt_shape_size(&m->outputs[k].shape);
    cols += h->width[k];
  }
  h->ycols = cols;
  const char *where = dt_config_where(cfg, "model", "outputs");
  if (train->ykind != DT_Y_VALUES)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: the model has %d outputs but '%s' has no target values: give one "
                        "target array per output (data.train_y = y.npz:a, y.npz:b) or CSV "
                        "target columns",
                        where, m->nout, train->what);
  if (d->ny_parts > 1 && d->ny_parts != m->nout)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: the model has %d outputs but data.train_y names %d target arrays: "
                        "give one per output, in order", where, m->nout, d->ny_parts);
  for (int k = 0; d->ny_parts > 1 && k < m->nout; k++)
    if (d->y_cols[k] != h->width[k])
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: output '%s' (loss %s) takes %zu target value%s per sample but "
                          "its target array (number %d of data.train_y) has %zu",
                          where, m->outputs[k].name, dt_loss_names[m->outputs[k].loss],
                          h->width[k], h->width[k] == 1 ? "" : "s", k + 1, d->y_cols[k]);
  if (train->y.row != cols)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the %d outputs take %zu target values per sample (a class id for "
                        "each output whose loss takes labels, its values for the others) but "
                        "'%s' has %zu",
                        where, m->nout, cols, train->y_what ? train->y_what : train->what,
                        train->y.row);
  /* Class ids of label outputs: integers in [0, units) on every split. */
  for (int s = 0; s < NSPLITS; s++) {
    const dt_dataset_t *f = &d->file[s];
    for (int k = 0; f->what && f->ykind == DT_Y_VALUES && k < m->nout; k++) {
      if (!dt_loss_uses_labels(m->outputs[k].loss)) continue;
      const double classes = (double)dt_shape_size(&m->outputs[k].shape);
      for (size_t i = 0; i < f->n; i++) {
        double v = dt_array_get(&f->y, f->first + i, h->col[k]);
        if (!(v >= 0.0 && v < classes) || v != floor(v)) {
          char at[64];
          return dt_error_set(err, DT_ERR_FORMAT,
                              "'%s': %s: target %g for output '%s' is not a class id in 0..%d",
                              f->y_what ? f->y_what : f->what,
                              dt_dataset_sample_where(f, i, at, sizeof at), v,
                              m->outputs[k].name, (int)classes - 1);
        }
      }
    }
  }
  const size_t cap = (size_t)capacity;
  h->values = malloc(sizeof *h->values * cap * (cols ? cols : 1));
  h->x = malloc(sizeof *h->x * cap * dt_model_input_size(m));
  bool ok = h->values && h->x;
  for (int k = 0; k < m->nout; k++) {
    h->labels[k] = malloc(sizeof *h->labels[k] * cap);
    h->targets[k] = malloc(sizeof *h->targets[k] * cap * h->width[k]);
    ok &= h->labels[k] && h->targets[k];
  }
  if (!ok) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the outputs' targets");
  return 0;
}

void multi_io_fill(multi_io_t *h, const float *values, int batch) {
  for (int k = 0; k < h->n; k++)
    for (int b = 0; b < batch; b++) {
      const float *row = values + (size_t)b * h->ycols + h->col[k];
      h->labels[k][b] = (int32_t)row[0];
      memcpy(h->targets[k] + (size_t)b * h->width[k], row, sizeof(float) * h->width[k]);
    }
}

double multi_io_loss(multi_io_t *h, dt_model_t *m, int batch, bool grad, multi_io_sums_t *sums) {
  double total = 0.0;
  for (int k = 0; k < m->nout; k++) {
    dt_model_output_t *o = &m->outputs[k];
    const float *y = dt_model_output(m, k);
    const int dim = (int)dt_shape_size(&o->shape);
    double l = dt_loss_compute(o->loss, y, batch, dim, h->labels[k], h->targets[k],
                               grad ? o->dout : NULL);
    if (grad && o->weight != 1.0f)
      for (size_t i = 0; i < (size_t)batch * (size_t)dim; i++) o->dout[i] *= o->weight;
    total += o->weight * l;
    size_t n = 0;
    sums->correct[k] += (double)dt_loss_count_correct(o->loss, y, batch, dim, h->labels[k],
                                                      h->targets[k], &n);
    sums->total[k] += (double)n;
    sums->loss[k] += l;
  }
  return total;
}

size_t multi_io_format(const dt_model_t *m, const char *prefix, const multi_io_sums_t *sums,
                       double batches, char *buf, size_t cap) {
  size_t used = 0;
  for (int k = 0; k < m->nout && used < cap; k++) {
    used += (size_t)snprintf(buf + used, cap - used, " - %s%s_loss: %.4f", prefix,
                             m->outputs[k].name, sums->loss[k] / batches);
    if (sums->total[k] > 0 && used < cap)
      used += (size_t)snprintf(buf + used, cap - used, " - %s%s_accuracy: %.4f", prefix,
                               m->outputs[k].name, sums->correct[k] / sums->total[k]);
  }
  return used < cap ? used : cap;
}

void multi_io_free(multi_io_t *h) {
  for (int k = 0; k < DT_MAX_MODEL_IO; k++) {
    free(h->labels[k]);
    free(h->targets[k]);
  }
  free(h->values);
  free(h->x);
  memset(h, 0, sizeof *h);
}
