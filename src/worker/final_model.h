/* The model every run leaves behind: at its end, and when a signal stops it, rank 0
 * writes the model as a saved model (saved_model.h) into <tensorboard.logdir>/
 * <tensorboard.run>/model/ (a parameter-server worker: its worker-<id>/model/), or
 * train.model_dir, whether or not checkpoints are written.
 *
 * Which weights: at the end of a run, the weights the test set is evaluated with: the
 * best epoch's when EarlyStopping restores them (restore_best_weights), else the last
 * step's. When a signal stops the run, the weights of the last step done (a checkpoint,
 * if checkpoint.dir is set, has the same ones and the optimizer besides). The layers'
 * state (batch norm's moving averages) is the average over the ranks, as in a
 * checkpoint. */
#ifndef DTRAIN_WORKER_FINAL_MODEL_H
#define DTRAIN_WORKER_FINAL_MODEL_H

#include <stdbool.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "options.h"

typedef struct {
  bool enabled;            /* train.save_model */
  char dir[OPT_PATH_MAX];  /* train.model_dir; "": <run folder>/model */
  char written[OPT_PATH_MAX + 16]; /* where the last save went ("" before) */
} final_model_opts_t;

/* Reads train.save_model and train.model_dir. */
int final_model_read(dt_config_t *cfg, final_model_opts_t *o, dt_error_t *err);

struct trainer;

/* Writes the trainer's model as its final model; `why` describes the weights ("final",
 * "best of epoch 3", ...). With average_states, collective in a multi-rank job: the
 * layers' state becomes the average over the ranks first (the run is ending). Logs where
 * the model went. */
int final_model_save(struct trainer *t, const char *why, bool average_states, dt_error_t *err);

#endif
