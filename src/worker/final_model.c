/* The model every run writes at its end (see final_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "final_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saved_model.h"

int final_model_read(dt_config_t *cfg, final_model_opts_t *o, dt_error_t *err) {
  memset(o, 0, sizeof *o);
  const char *dir;
  int rc;
  if ((rc = dt_config_get_bool(cfg, "train", "save_model", true, &o->enabled, err)) ||
      (rc = dt_config_get_string(cfg, "train", "model_dir", "", &dir, err)))
    return rc;
  if (snprintf(o->dir, sizeof o->dir, "%s", dir) >= (int)sizeof o->dir)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [train] model_dir: path too long",
                        dt_config_where(cfg, "train", "model_dir"));
  return 0;
}

/* Averages the layers' state over the ranks, in the model (collective). */
static int average_states(const final_model_run_t *r, dt_error_t *err) {
  dt_model_t *m = r->model;
  if (!m->num_states || r->comm->world < 2) return 0;
  float *states;
  int rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err);
  if (!rc) rc = dt_comm_allreduce_avg(r->comm, states, m->num_states, err);
  if (!rc) rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  return rc;
}

int final_model_save(final_model_opts_t *o, const final_model_run_t *r, const char *why,
                     bool average, dt_error_t *err) {
  if (!o->enabled) return 0;
  int rc;
  if (average && (rc = average_states(r, err)))
    return dt_error_prefix(err, "averaging the layers' state for the final model: ");
  if (r->comm->rank != 0) return 0;
  /* The run folder: the TensorBoard run's, with a PS worker's own sub-folder. */
  char dir[sizeof o->written];
  if (o->dir[0]) snprintf(dir, sizeof dir, "%s", o->dir);
  else snprintf(dir, sizeof dir, "%s/model", r->run_dir);
  saved_model_info_t info = {r->step, r->epoch, r->target, why};
  /* Like a checkpoint that cannot be written: reported, and the run ends as it would
   * (its test result is still printed; a checkpoint may hold the same weights). */
  dt_error_t werr = {0};
  if (saved_model_write(dir, r->model, r->cfg, r->preprocess_json, &info, &werr)) {
    o->failed = true;
    dt_log_error(r->log, "the model was not saved: %s", werr.msg);
    return 0;
  }
  snprintf(o->written, sizeof o->written, "%s", dir);
  dt_log_info(r->log, "Model saved to %s (weights: %s); use it with dtrain-worker %s --model %s",
              dir, why, r->use ? r->use : "predict or evaluate", dir);
  return 0;
}
