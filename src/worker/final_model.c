/* The model every run writes at its end (see final_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "final_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saved_model.h"
#include "trainer.h"

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
static int average_states(trainer_t *t, dt_error_t *err) {
  dt_model_t *m = &t->model;
  if (!m->num_states || t->comm->world < 2) return 0;
  float *states;
  int rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err);
  if (!rc) rc = dt_comm_allreduce_avg(t->comm, states, m->num_states, err);
  if (!rc) rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  return rc;
}

int final_model_save(struct trainer *t, const char *why, bool average, dt_error_t *err) {
  final_model_opts_t *o = &t->final_model;
  if (!o->enabled) return 0;
  int rc;
  if (average && (rc = average_states(t, err)))
    return dt_error_prefix(err, "averaging the layers' state for the final model: ");
  if (t->comm->rank != 0) return 0;
  /* The run folder: the TensorBoard run's, with a PS worker's own sub-folder. */
  char dir[sizeof o->written];
  if (o->dir[0]) snprintf(dir, sizeof dir, "%s", o->dir);
  else snprintf(dir, sizeof dir, "%s/model", t->tlog.dir);
  saved_model_info_t info = {t->run.step, t->run.epoch, t->target, why};
  if ((rc = saved_model_write(dir, &t->model, t->cfg, t->preprocess_json, &info, err))) return rc;
  snprintf(o->written, sizeof o->written, "%s", dir);
  dt_log_info(&t->log, "Model saved to %s (weights: %s); use it with dtrain-worker predict or "
              "evaluate --model %s", dir, why, dir);
  return 0;
}
