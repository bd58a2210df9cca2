/* Models to and from Keras 3.
 *
 * Export writes a .keras file as Keras 3 saves one: a zip of config.json (the
 * architecture, a Sequential model), model.weights.h5 (the weights, HDF5, one group
 * per layer: layers/<name>/vars/0, 1, ...) and metadata.json, which
 * keras.models.load_model opens. Import reads a Keras model's architecture (a .keras
 * file's config.json, or the JSON of model.to_json()) into a dtrain model config, and
 * with a .keras file its weights, in dtrain's parameter names. docs/keras.md lists the
 * layers and options either way. */
#ifndef DTRAIN_KERAS_H
#define DTRAIN_KERAS_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/model.h"
#include "dtrain/tensor.h"

/* Writes model m (built from cfg, whose [layer.N] sections give the layers' options),
 * with parameter values params (m->num_params floats, host memory) and state values
 * states (m->num_states; batch norm's moving statistics), to path as a .keras file.
 * A layer Keras has no counterpart for is an error naming it. */
int dt_keras_export(const dt_model_t *m, dt_config_t *cfg, const float *params,
                    const float *states, const char *path, dt_error_t *err);

/* A Keras model read into dtrain's terms. */
typedef struct {
  char *ini;                 /* the model's config: [model] input and loss, [layer.N] */
  bool has_weights;          /* the source had weights (a .keras file) */
  dt_param_info_t *tensors;  /* parameters, then states, as a checkpoint's model file */
  int ntensors;
  float *values;             /* tensors[i] at values + tensors[i].offset */
  size_t nvalues;
} dt_keras_import_t;

/* Reads path: a .keras file (config and weights) or a JSON file (architecture only).
 * Every layer is mapped or the import fails with a message naming the layer and its
 * class; the weights must fit the shapes the dtrain model has. */
int dt_keras_import(const char *path, dt_keras_import_t *out, dt_error_t *err);
/* The same from JSON text in memory (what names it in messages). */
int dt_keras_import_json(const char *text, size_t len, const char *what, dt_keras_import_t *out,
                         dt_error_t *err);
/* Writes dir/model.ini and, with weights, dir/init_weights.safetensors (dir is made if
 * missing). */
int dt_keras_import_write(const dt_keras_import_t *imp, const char *dir, dt_error_t *err);
void dt_keras_import_free(dt_keras_import_t *imp);

/* Loads a safetensors file with a model's parameter and state tensors, by their names
 * (a checkpoint's model.safetensors, or an import's init_weights.safetensors), into m.
 * Every tensor of m must be there with its shape. */
int dt_keras_weights_load(dt_model_t *m, const char *path, dt_error_t *err);

#endif
