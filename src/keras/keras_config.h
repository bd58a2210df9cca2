/* A Keras model's architecture mapped to dtrain's terms: the model config text and, for
 * every parameter and state tensor of the dtrain model it describes (in the model's
 * order), the model.weights.h5 dataset that holds its values. No model is built here,
 * so that this part, which reads untrusted JSON, can be fuzzed alone
 * (tests/fuzz/fuzz_keras_config.c). Private to src/keras. */
#ifndef DTRAIN_KERAS_CONFIG_H
#define DTRAIN_KERAS_CONFIG_H

#include "dtrain/error.h"
#include "dtrain/json.h"

enum { DT_KERAS_SRC_LEN = 192, DT_KERAS_LABEL_LEN = 160 };

/* Where one dtrain tensor's values come from: a dataset, or zeros ("" path: a Keras
 * layer without that bias). */
typedef struct {
  char path[DT_KERAS_SRC_LEN];
  char label[DT_KERAS_LABEL_LEN]; /* "layer 'dense' (Dense)" for messages */
} dt_keras_src_t;

typedef struct {
  char *ini;            /* [model] input and loss, then the [layer.N] sections */
  int input[4], input_ndim;
  dt_keras_src_t *params, *states;
  int nparams, nstates;
} dt_keras_map_t;

/* Maps root (a Keras model's config, parsed); `what` names the file in messages. A
 * layer or option dtrain lacks is DT_ERR_CONFIG naming the layer and its class; JSON
 * that is not a Keras model is DT_ERR_FORMAT. */
int dt_keras_map_config(const dt_json_t *root, const char *what, dt_keras_map_t *out,
                        dt_error_t *err);
void dt_keras_map_free(dt_keras_map_t *m);

#endif
