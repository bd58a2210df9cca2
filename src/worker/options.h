/* The run settings of the worker that are not the model: data files, training
 * length, batch, learning rate, seed, threads, and the gradient exchange between
 * ranks. Read from [data], [train] and [sync]. */
#ifndef DTRAIN_WORKER_OPTIONS_H
#define DTRAIN_WORKER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"

enum { OPT_PATH_MAX = 4096 };

typedef struct {
  char train_images[OPT_PATH_MAX], train_labels[OPT_PATH_MAX];
  char test_images[OPT_PATH_MAX], test_labels[OPT_PATH_MAX];
  bool binary_addition;    /* [data] source = binary_addition: generated, not IDX files */
  long bits, train_samples, test_samples; /* its sizes */
  double validation_split; /* tail fraction of the training file held out */
  long train_limit;        /* use only the first N training samples (0: all) */
  long test_limit;         /* evaluate on the first N test samples (0: all) */

  long epochs;
  long batch_size;         /* per rank */
  double lr;
  uint64_t seed;
  long threads;            /* BLAS threads per process */
  bool scale_lr;           /* linear scaling rule: lr *= number of ranks */
  double clipnorm;         /* clip the global gradient norm to this (0: off) */

  double bucket_mb;        /* [sync] gradient bucket size in MiB (0: one all-reduce) */
  int allreduce;           /* [sync] a dt_allreduce_algo */
  double timeout_s;        /* [sync] watchdog: longest wait for one collective */
  bool ps;                 /* [sync] mode = ps: parameter servers, not all-reduce (exchange.h) */

  bool resume;             /* (command line) --resume: continue from a checkpoint */
} run_options_t;

/* Reads [data], [train] and [sync]; file names are relative to data.dir unless
 * absolute. */
int run_options_read(dt_config_t *cfg, run_options_t *o, dt_error_t *err);

#endif
