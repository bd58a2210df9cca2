/* A dataset for a saved model: an input file in any supported format, loaded with the
 * preprocessing the model was trained with (preprocess.json): the same feature columns
 * (CSV), image size and channels, vocabulary and sequence length (text), class names,
 * and scaling with its statistics. Used by predict and evaluate. */
#ifndef DTRAIN_WORKER_MODEL_DATA_H
#define DTRAIN_WORKER_MODEL_DATA_H

#include <stdbool.h>

#include "dtrain/data.h"
#include "dtrain/error.h"
#include "saved_model.h"

typedef struct {
  const char *format; /* idx, csv, numpy, images, text; NULL: from the path (a folder:
                       * images; .npy/.npz: numpy; .csv: csv; .tsv/.txt: text; a name
                       * with "idx" or "ubyte": idx), else the model's own format */
  const char *x;      /* the inputs: a file, or a folder of images */
  const char *y;      /* idx and numpy: the targets' file (NULL: none) */
  bool targets;       /* the targets are needed (evaluate): CSV target columns, labels */
  long limit;         /* keep the first limit samples (0: all) */
} model_input_t;

/* Loads the input into ds (owned: dt_dataset_free) and the model's scaling into scaling
 * (dt_scaling_free). Checks that the samples have the model's input size, and with
 * targets that they fit its outputs. *format_out (may be NULL) gets the format used.
 * Errors name the input file and the model's directory. */
int model_data_load(const saved_model_t *sm, const model_input_t *in, dt_dataset_t *ds,
                    dt_scaling_t *scaling, const char **format_out, dt_error_t *err);

/* The model's own test split, as its config names it (after any --set), with its
 * test_limit; the generated binary-addition test set for that format. *what_out gets a
 * description for messages. */
int model_data_load_test(saved_model_t *sm, dt_dataset_t *ds, dt_scaling_t *scaling,
                         dt_error_t *err);

#endif
