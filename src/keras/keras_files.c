/* The files of an import (model.ini, init_weights.safetensors) and the loader of a
 * safetensors weights file into a built model (the trainer's [model] init_weights). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/checkpoint.h"
#include "dtrain/keras.h"
#include "file_io.h"

/* dir/name, written atomically. */
static int write_file(const char *dir, const char *name, const void *data, size_t len,
                      dt_error_t *err) {
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
    return dt_error_set(err, DT_ERR_ARG, "%s: path too long", dir);
  return keras_write_file(path, data, len, err);
}

int dt_keras_import_write(const dt_keras_import_t *imp, const char *dir, dt_error_t *err) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return dt_error_set(err, DT_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
  int rc = write_file(dir, "model.ini", imp->ini, strlen(imp->ini), err);
  if (rc || !imp->has_weights) return rc;
  const char *meta[] = {"format", "dtrain", "source", "keras import", NULL};
  void *st;
  size_t len;
  if ((rc = dt_safetensors_encode(imp->tensors, imp->ntensors, imp->values, meta, &st, &len, err)))
    return rc;
  rc = write_file(dir, "init_weights.safetensors", st, len, err);
  free(st);
  return rc;
}

int dt_keras_weights_load(dt_model_t *m, const char *path, dt_error_t *err) {
  unsigned char *data;
  size_t len;
  int rc = keras_read_file(path, &data, &len, err);
  if (rc) return rc;
  float *params, *states = NULL;
  int n = m->nparams + m->nstates;
  dt_param_info_t *tensors = calloc((size_t)n + 1, sizeof *tensors);
  float **bases = calloc((size_t)n + 1, sizeof *bases);
  rc = !tensors || !bases ? dt_error_set(err, DT_ERR_NOMEM, "out of memory") : 0;
  if (!rc) rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err);
  if (!rc && m->nstates) rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err);
  if (!rc) {
    for (int i = 0; i < n; i++) {
      bool state = i >= m->nparams;
      tensors[i] = state ? m->states[i - m->nparams] : m->params[i];
      bases[i] = state ? states : params;
    }
    rc = dt_safetensors_decode_parts(data, len, tensors, n, bases, path, err);
  }
  if (!rc) rc = dt_model_from_host(m, DT_MODEL_PARAMS, err);
  if (!rc && m->nstates) rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  free(tensors);
  free(bases);
  free(data);
  return rc;
}
