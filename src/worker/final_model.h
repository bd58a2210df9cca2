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

#include "dtrain/comm.h"
#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/model.h"
#include "model_eval.h"
#include "options.h"

typedef struct {
  bool enabled;            /* train.save_model */
  char dir[OPT_PATH_MAX];  /* train.model_dir; "": <run folder>/model */
  char written[OPT_PATH_MAX + 16]; /* where the last save went ("" before) */
  bool failed;             /* a save could not be written (reported; the run goes on) */
} final_model_opts_t;

/* Reads train.save_model and train.model_dir. */
int final_model_read(dt_config_t *cfg, final_model_opts_t *o, dt_error_t *err);

/* What of the run goes into its final model (the trainer fills it; nothing here knows
 * the trainer). */
typedef struct {
  dt_comm_t *comm;
  dt_model_t *model;
  const dt_config_t *cfg;
  const char *preprocess_json;
  const char *run_dir; /* the run folder: <model>/ goes inside it */
  dt_log_t *log;
  long step, epoch;
  target_kind target;
  const char *use; /* the commands the log line suggests (NULL: "predict or evaluate") */
} final_model_run_t;

/* Writes the run's model as its final model; `why` describes the weights ("final",
 * "best of epoch 3", ...). With average_states, collective in a multi-rank job: the
 * layers' state becomes the average over the ranks first (the run is ending). Logs where
 * the model went. A write that fails (disk full) is logged and sets o->failed, like a
 * checkpoint that cannot be written; only a failed collective is returned. */
int final_model_save(final_model_opts_t *o, const final_model_run_t *r, const char *why,
                     bool average_states, dt_error_t *err);

#endif
