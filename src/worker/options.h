/* The run settings of the worker that are neither the model nor the data (run_data.h):
 * training length, batch, learning rate, seed, threads, and the gradient exchange
 * between ranks. Read from [train] and [sync]. */
#ifndef DTRAIN_WORKER_OPTIONS_H
#define DTRAIN_WORKER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"

enum { OPT_PATH_MAX = 4096 };

typedef struct {
  long epochs;
  long batch_size;         /* per rank */
  double lr;
  uint64_t seed;
  long threads;            /* compute threads per process (0 in the config: automatic,
                            * resolved by run_options_threads) */
  int conv;                /* train.conv: a dt_conv_impl */
  int precision;           /* train.precision: a dt_precision */
  bool scale_lr;           /* linear scaling rule: lr *= number of ranks */
  double clipnorm;         /* clip the global gradient norm to this (0: off) */

  double bucket_mb;        /* [sync] gradient bucket size in MiB (0: one all-reduce) */
  int allreduce;           /* [sync] a dt_allreduce_algo */
  double timeout_s;        /* [sync] watchdog: longest wait for one collective */
  bool ps;                 /* [sync] mode = ps: parameter servers, not all-reduce (exchange.h) */

  bool resume;             /* (command line) --resume: continue from a checkpoint */
} run_options_t;

/* Reads [train] and [sync]. */
int run_options_read(dt_config_t *cfg, run_options_t *o, dt_error_t *err);

/* The compute threads to use: train.threads if set above 0, else 1 per rank under a
 * launcher (mpirun, srun: the ranks of a host share its cores) and every online core
 * for a process running alone. */
long run_options_threads(const run_options_t *o, bool launched);

#endif
