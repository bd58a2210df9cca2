/* Models with several outputs (and inputs) in the trainer: the data's target values of a
 * sample are split in column order among the outputs (an output whose loss takes labels
 * takes one column, the class id; any other as many as its values), each output's loss
 * is computed on its own values, and the total is sum_k w_k loss_k, with each output's
 * gradient scaled by its weight. Single-output models never come here: their loss stays
 * the trainer's own code, bit for bit. */
#ifndef DTRAIN_WORKER_MULTI_IO_H
#define DTRAIN_WORKER_MULTI_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/model.h"
#include "run_data.h"

typedef struct {
  int n;                          /* the model's outputs (> 1 where this is in use) */
  size_t col[DT_MAX_MODEL_IO];    /* output k's first column of the targets */
  size_t width[DT_MAX_MODEL_IO];  /* its columns: 1 (a class id) or its values */
  size_t ycols;                   /* target values per sample */
  int32_t *labels[DT_MAX_MODEL_IO]; /* (capacity) class ids of label outputs */
  float *targets[DT_MAX_MODEL_IO];  /* (capacity, width) values of the others */
  float *values;                  /* (capacity, ycols) a batch's targets, gathered */
  float *x;                       /* (capacity, inputs) a batch's samples, gathered */
} multi_io_t;

/* Per-output sums over batches: the batch means of each loss, correct and counted
 * predictions (accuracy; 0 counted for a regression output). */
typedef struct {
  double loss[DT_MAX_MODEL_IO], correct[DT_MAX_MODEL_IO], total[DT_MAX_MODEL_IO];
} multi_io_sums_t;

/* Checks the training data's targets against the model's outputs (one target array per
 * output, or columns that add up; class ids in range on every split) and allocates the
 * buffers for batches of up to capacity. Errors name [model] outputs. */
int multi_io_setup(multi_io_t *h, const dt_model_t *m, const run_data_t *d, dt_config_t *cfg,
                   int capacity, dt_error_t *err);

/* Splits a batch's target values (batch, ycols) among the outputs. */
void multi_io_fill(multi_io_t *h, const float *values, int batch);

/* After a forward: each output's loss (into its dout, times its weight, when grad), added
 * to sums (batch means); returns the weighted total. */
double multi_io_loss(multi_io_t *h, dt_model_t *m, int batch, bool grad, multi_io_sums_t *sums);

/* " - NAME_loss: v - NAME_accuracy: a" for every output (prefix "val_" or ""), from sums
 * divided by batches. */
size_t multi_io_format(const dt_model_t *m, const char *prefix, const multi_io_sums_t *sums,
                       double batches, char *buf, size_t cap);

void multi_io_free(multi_io_t *h);

#endif
