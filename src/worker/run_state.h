/* The state of a run: where it is (step, epoch, batch in the epoch), this rank's running
 * metrics of the epoch so far, its noise stream, and the memory of the callbacks and of
 * checkpointing (the best monitored value, EarlyStopping's copy of the best weights).
 *
 * This is what a checkpoint records besides the model and the optimizer: with those
 * three restored, a resumed run continues exactly as the uninterrupted one would. The
 * trainer advances it; checkpointing.c saves and restores it and knows nothing else of
 * the trainer. */
#ifndef DTRAIN_WORKER_RUN_STATE_H
#define DTRAIN_WORKER_RUN_STATE_H

#include <stdbool.h>

#include "dtrain/callbacks.h"
#include "dtrain/rng.h"

typedef struct {
  long step; /* global steps done */
  /* The position: the next batch to run is batch_in_epoch of epoch (both 0-based). */
  long epoch, batch_in_epoch;
  /* This rank's running sums of the epoch's training metrics so far. */
  double epoch_loss_sum, epoch_correct, epoch_total;
  long epoch_batches; /* batches in epoch_loss_sum (fewer than batch_in_epoch after a
                       * resume with another world size, whose sums start over) */
  dt_rng_t rng;       /* this rank's stream for dropout and other noise */
  /* The best value of checkpoint.monitor so far (save_best_only), if has_best. */
  double best_metric;
  bool has_best;
  long last_ckpt_step; /* -1: none written by this run yet */
  /* The callbacks. Their `st` parts are state; their `opt` parts are the config's
   * settings, kept beside the state because the callbacks' functions take both. */
  dt_early_stopping_t early_stopping;
  dt_reduce_lr_t reduce_lr;
  float *best_weights; /* (num_params + num_states) for restore_best_weights, or NULL */
  bool resumed;        /* this run continues a checkpoint */
} run_state_t;

/* A run at its start: step 0, epoch 0, no checkpoint written. The callbacks are set by
 * their own _read functions. */
void run_state_init(run_state_t *rs);

/* Moves the position to the start of the next epoch; the running sums start over. */
void run_state_next_epoch(run_state_t *rs);

/* True once EarlyStopping has decided (also in a checkpoint that a run resumes). */
bool run_state_stopped_early(const run_state_t *rs);

void run_state_free(run_state_t *rs);

#endif
