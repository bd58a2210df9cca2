/* Keras model -> dtrain model config and weights (see dtrain/keras.h).
 *
 * keras_config.c maps the architecture to a config and to the place of every weight in
 * model.weights.h5. The dtrain model is then built from the config on the CPU device,
 * which names and shapes every parameter and state tensor, and the weights are read
 * into them in order, each dataset's shape checked against the tensor's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/json.h"
#include "dtrain/keras.h"
#include "dtrain/zip.h"
#include "file_io.h"
#include "h5.h"
#include "keras_config.h"

/* Builds the dtrain model of `text` on the CPU (for its tensor names and shapes). */
static int build_model(const dt_keras_map_t *x, const char *what, dt_device_t **dev,
                       dt_config_t **cfg, dt_model_t *m, dt_error_t *err) {
  dt_device_options_t opt = {0};
  int rc = dt_device_create(&opt, dev, err);
  if (rc) return rc;
  if (!(*cfg = dt_config_new())) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  if ((rc = dt_config_load_string(*cfg, x->ini, "the imported model", err))) return rc;
  dt_shape_t in = {x->input_ndim, {1, 1, 1, 1}};
  for (int i = 0; i < x->input_ndim; i++) in.dims[i] = x->input[i];
  rc = dt_model_build(m, *dev, *cfg, in, err);
  if (rc) dt_error_prefix(err, "%s: the imported model does not build: ", what);
  return rc;
}

static int read_weights(const dt_keras_map_t *x, const char *what, const dt_model_t *m,
                        dt_h5_t *h, dt_keras_import_t *out, dt_error_t *err) {
  if (x->nparams != m->nparams || x->nstates != m->nstates)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: %d weight tensors and %d state tensors in Keras, %d and %d in "
                        "dtrain's model",
                        what, x->nparams, x->nstates, m->nparams, m->nstates);
  out->ntensors = m->nparams + m->nstates;
  out->nvalues = m->num_params + m->num_states;
  out->tensors = calloc((size_t)out->ntensors + 1, sizeof *out->tensors);
  out->values = calloc(out->nvalues ? out->nvalues : 1, sizeof(float));
  if (!out->tensors || !out->values)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory importing %s", what);
  for (int i = 0; i < out->ntensors; i++) {
    bool state = i >= m->nparams;
    dt_param_info_t t = state ? m->states[i - m->nparams] : m->params[i];
    if (state) t.offset += m->num_params;
    out->tensors[i] = t;
    const dt_keras_src_t *s = state ? &x->states[i - m->nparams] : &x->params[i];
    if (!h || !s->path[0]) continue; /* zeros: a Keras layer without that bias */
    dt_shape_t ks;
    int rc = dt_h5_shape(h, s->path, &ks, err);
    if (rc) return dt_error_prefix(err, "%s: %s: ", what, s->label);
    bool same = ks.ndim == t.shape.ndim;
    for (int d = 0; same && d < ks.ndim; d++) same = ks.dims[d] == t.shape.dims[d];
    if (!same) {
      char a[64], b[64];
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: %s: weight %s has shape %s but the layer's config makes "
                          "dtrain's %s %s",
                          what, s->label, s->path, dt_shape_str(&ks, a, sizeof a), t.name,
                          dt_shape_str(&t.shape, b, sizeof b));
    }
    if ((rc = dt_h5_read(h, s->path, out->values + t.offset, t.count, err)))
      return dt_error_prefix(err, "%s: %s: ", what, s->label);
  }
  return 0;
}

static int import_from(const char *text, size_t len, const char *what, const void *h5data,
                       size_t h5len, dt_keras_import_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  dt_keras_map_t map = {0};
  dt_json_t *root = NULL;
  dt_device_t *dev = NULL;
  dt_config_t *cfg = NULL;
  dt_model_t m;
  bool built = false;
  dt_h5_t *h = NULL;
  int rc = dt_json_parse(text, len, what, &root, err);
  if (!rc) rc = dt_keras_map_config(root, what, &map, err);
  if (!rc) {
    rc = build_model(&map, what, &dev, &cfg, &m, err);
    built = dev && cfg;
  }
  if (!rc && h5data) {
    char hw[512];
    snprintf(hw, sizeof hw, "%s: model.weights.h5", what);
    rc = dt_h5_open(h5data, h5len, hw, &h, err);
  }
  if (!rc) rc = read_weights(&map, what, &m, h, out, err);
  if (!rc) {
    out->ini = map.ini;
    map.ini = NULL;
  }
  out->has_weights = h5data != NULL;
  dt_h5_close(h);
  if (built) dt_model_free(&m);
  dt_config_free(cfg);
  dt_device_destroy(dev);
  dt_json_free(root);
  dt_keras_map_free(&map);
  if (rc) dt_keras_import_free(out);
  return rc;
}

int dt_keras_import_json(const char *text, size_t len, const char *what, dt_keras_import_t *out,
                         dt_error_t *err) {
  return import_from(text, len, what, NULL, 0, out, err);
}

/* ---- .keras files ---- */

typedef struct {
  dt_zip_entry_t config, weights;
  bool has_config, has_weights;
} entries_t;

static int find_entry(void *arg, const dt_zip_entry_t *e) {
  entries_t *en = arg;
  if (e->name_len == 11 && !memcmp(e->name, "config.json", 11)) en->config = *e, en->has_config = true;
  if (e->name_len == 16 && !memcmp(e->name, "model.weights.h5", 16))
    en->weights = *e, en->has_weights = true;
  return 0;
}

int dt_keras_import(const char *path, dt_keras_import_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  unsigned char *data = NULL;
  size_t len = 0;
  int rc = keras_read_file(path, &data, &len, err);
  if (rc) return rc;
  /* A zip starts with a local header "PK\3\4" (or is an empty archive "PK\5\6"). */
  if (len >= 4 && data[0] == 'P' && data[1] == 'K') {
    entries_t en = {0};
    const unsigned char *cfg = NULL, *h5 = NULL;
    unsigned char *cfg_owned = NULL, *h5_owned = NULL;
    rc = dt_zip_each(path, data, len, find_entry, &en, err);
    if (!rc && (!en.has_config || !en.has_weights))
      rc = dt_error_set(err, DT_ERR_FORMAT,
                        "%s: a zip without %s: not a .keras file", path,
                        !en.has_config ? "config.json" : "model.weights.h5");
    if (!rc) rc = dt_zip_extract(path, data, len, &en.config, &cfg, &cfg_owned, err);
    if (!rc) rc = dt_zip_extract(path, data, len, &en.weights, &h5, &h5_owned, err);
    if (!rc)
      rc = import_from((const char *)cfg, (size_t)en.config.usize, path, h5,
                       (size_t)en.weights.usize, out, err);
    free(cfg_owned);
    free(h5_owned);
  } else {
    rc = import_from((const char *)data, len, path, NULL, 0, out, err);
  }
  free(data);
  return rc;
}

void dt_keras_import_free(dt_keras_import_t *imp) {
  free(imp->ini);
  free(imp->tensors);
  free(imp->values);
  memset(imp, 0, sizeof *imp);
}
