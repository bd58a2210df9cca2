/* Saved models: a trained model as a directory that predict, evaluate and the exporters
 * load, and that every run writes at its end (final_model.h).
 *
 * A saved model is a directory written atomically like a checkpoint (dtrain/checkpoint.h:
 * files in .tmp-NAME beside it, a manifest.json with every file's size and CRC32C, then
 * one rename) holding
 *   model.safetensors  the parameters, then the layers' non-trainable state (batch norm's
 *                      moving averages), float32, named as in a checkpoint
 *                      ("dense_1.kernel", ...); __metadata__: format "dtrain", kind
 *                      "saved-model", step, epoch, target, weights (which weights these
 *                      are) and the run's whole config text ("config")
 *   preprocess.json    the run's data preprocessing (run_data_preprocess_json): format,
 *                      input shape, scaling with its statistics, classes, vocabulary...
 *   manifest.json      the sizes and CRC32Cs of the two
 * A checkpoint directory holds the same two files (and more), so saved_model_load takes
 * either, or a checkpoint root (its newest checkpoint that verifies). */
#ifndef DTRAIN_WORKER_SAVED_MODEL_H
#define DTRAIN_WORKER_SAVED_MODEL_H

#include <stdbool.h>

#include "dtrain/checkpoint.h"
#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/json.h"
#include "dtrain/model.h"
#include "trainer.h"

typedef struct {
  char dir[DT_CKPT_PATH_MAX]; /* the directory the model was read from */
  dt_config_t *cfg;       /* the run's config, from model.safetensors' metadata */
  dt_model_t model;       /* built on the device, weights and state loaded; not prepared
                           * (dt_model_prepare sizes it for a batch) */
  char *preprocess_json;  /* preprocess.json's text */
  dt_json_t *preprocess;  /* the same, parsed (an object) */
  target_kind target;     /* what the loss was trained against (trainer.h) */
  long step, epoch;       /* where training was when these weights were saved (-1: unknown) */
  char weights[128];      /* which weights these are ("final", "best of epoch 3", ...) */
} saved_model_t;

/* Loads a saved model, a checkpoint directory, or a checkpoint root (its newest
 * checkpoint that verifies); a path to a model.safetensors file means its directory.
 * Every file is checked against the manifest's size and CRC32C (model.safetensors as it
 * is read). The model is built from the stored config for the stored input shape
 * ([model] input, else preprocess.json's input_shape) on dev. Errors name the path: a
 * folder that is not a model (DT_ERR_NOT_FOUND), a corrupt or malformed file
 * (DT_ERR_FORMAT), weights that do not fit the config's model (DT_ERR_FORMAT). On
 * failure *out is empty (saved_model_free is still safe to call). */
int saved_model_load(const char *path, dt_device_t *dev, saved_model_t *out, dt_error_t *err);

/* What saved_model_write records beside the weights. */
typedef struct {
  long step, epoch;
  target_kind target;
  const char *weights; /* which weights these are, e.g. "final" (NULL: "final") */
} saved_model_info_t;

/* Writes model m (its parameters and state as they are on the device now), the run's
 * config and preprocess_json (NULL: "{}") as a saved model at dir, atomically: dir is
 * replaced only once the new one is complete, and only if it is a directory dtrain
 * wrote. dir's parent is created if missing. */
int saved_model_write(const char *dir, dt_model_t *m, const dt_config_t *cfg,
                      const char *preprocess_json, const saved_model_info_t *info,
                      dt_error_t *err);

/* The input shape of a saved model's samples, e.g. "(28, 28, 1)", into buf. */
const char *saved_model_input_shape(const saved_model_t *sm, char *buf, size_t cap);

/* The class names preprocess.json records (NULL-terminated array of pointers into
 * sm->preprocess, malloc'd; the caller frees the array only), or NULL when there are
 * none; *n gets the count. */
const char **saved_model_class_names(const saved_model_t *sm, int *n);

extern const char *const saved_model_target_names[]; /* "labels", "one_hot", ... */

void saved_model_free(saved_model_t *sm);

#endif
