/* The agreement check at the start of a job: every rank must be about to train the
 * same model the same way, or the all-reduces would silently mix unrelated
 * gradients, or hang on mismatched sizes. Each rank describes its run (parameter
 * count, steps per epoch, gradient buckets, and the config keys that must match)
 * and all ranks compare; on a mismatch every rank gets the same message naming the
 * ranks and the values that differ, and returns DT_ERR_MISMATCH. */
#ifndef DTRAIN_WORKER_AGREEMENT_H
#define DTRAIN_WORKER_AGREEMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"

typedef struct {
  size_t num_params;
  long steps_per_epoch;
  long nbuckets;
  bool resume; /* started with --resume: a rank without it would skip the resume's
                * collectives and wait in the first step's until the watchdog fires */
} run_shape_t;

/* Compares this rank's run with every other rank's; a collective call. Keys that may
 * differ between ranks are left out: data file locations (nodes may keep the data in
 * different places), train.threads, sync.timeout_s and sections other than [model],
 * [layer.N], [optimizer], [schedule], [train], [data] and [sync]. */
int agreement_check(dt_comm_t *comm, const dt_config_t *cfg, const run_shape_t *shape,
                    dt_error_t *err);

#endif
