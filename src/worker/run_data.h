/* The run's data: [data] and [augment] read, each split (train, validation, test) loaded
 * in its format, the validation split and limits applied, the targets made what the loss
 * needs, the scaling chosen (and standardization statistics computed), and what a run
 * computed about its data written out as JSON for its checkpoints (so that prediction
 * repeats the same preprocessing).
 *
 * Paths are relative to data.dir, which defaults to the Fashion-MNIST folder for IDX
 * and to the working directory for every other format. */
#ifndef DTRAIN_WORKER_RUN_DATA_H
#define DTRAIN_WORKER_RUN_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/augment.h"
#include "dtrain/config.h"
#include "dtrain/data.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/tensor.h"
#include "dtrain/text.h"
#include "options.h"

typedef enum {
  FORMAT_IDX,
  FORMAT_CSV,
  FORMAT_NUMPY,
  FORMAT_IMAGES,
  FORMAT_TEXT,
  FORMAT_BINARY_ADDITION
} data_format;

extern const char *const data_format_names[];

enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, NSPLITS };
/* At most this many arrays in a NumPy list (the model's inputs and outputs). */
enum { DT_MAX_IO_PARTS = 8 };

typedef struct {
  data_format format;
  /* Resolved paths per split: inputs (or the one file/folder of a format) and targets
   * (IDX and NumPy keep them apart); "" when not given. */
  char x[NSPLITS][OPT_PATH_MAX], y[NSPLITS][OPT_PATH_MAX];
  char targets[1024], features[4096]; /* csv: column names */
  int image_size[2];                  /* images: (height, width); 0: the first image's */
  int channels;                       /* images: 1, 3, or 0 (as the files are) */
  dt_token_kind tokens;               /* text */
  long max_tokens, sequence_length;
  double validation_split;
  long train_limit, test_limit;
  int scale;                          /* a dt_scale_kind, or -1: the format's default */
  long threads;                       /* background loader threads (0: in the step) */
  dt_augment_t augment;
  long bits, train_samples, test_samples; /* format = binary_addition */
} data_options_t;

typedef struct {
  data_options_t opt;
  dt_dataset_t file[NSPLITS]; /* own the storage */
  dt_dataset_t train, val, test; /* what is trained and evaluated on: views */
  bool test_inputs_deferred;  /* IDX bytes: the test inputs are loaded after training */
  dt_scaling_t scaling;
  /* NumPy lists (train_x = x.npz:a, x.npz:b): the arrays joined per sample, in order.
   * x_parts: the per-sample shape of each input array (one: the whole sample);
   * y_parts/y_cols: how many target arrays and the values per sample of each. */
  int nx_parts, ny_parts;
  dt_shape_t x_parts[DT_MAX_IO_PARTS];
  size_t y_cols[DT_MAX_IO_PARTS];
} run_data_t;

/* Reads [data] and [augment]. */
int run_data_read(run_data_t *d, dt_config_t *cfg, dt_error_t *err);

/* Loads every split that is given, then the validation split and the limits. seed
 * shuffles an image folder's file list (as Keras does) before a validation split. */
int run_data_load(run_data_t *d, dt_config_t *cfg, uint64_t seed, dt_error_t *err);

/* After the model is known: classes where the loss takes labels (labels true), the
 * scaling (embedding_input: the model starts with an embedding, so ids stay integers),
 * standardization statistics from the training split. */
int run_data_prepare(run_data_t *d, dt_config_t *cfg, bool labels, bool embedding_input,
                     dt_error_t *err);

/* Loads test inputs that were only checked at start (test_inputs_deferred), after the
 * training set has been released, so that the two never share the peak memory. */
int run_data_load_deferred_test(run_data_t *d, dt_error_t *err);

/* One line for the log: format, sample counts and shapes, classes, scaling. */
void run_data_describe(const run_data_t *d, const dt_log_t *log);

/* The preprocessing as a JSON object (malloc'd text): format, input shape, scaling and
 * its statistics, class names, and what the format computed (vocabulary, image size). */
char *run_data_preprocess_json(const run_data_t *d);

void run_data_free(run_data_t *d);

#endif
