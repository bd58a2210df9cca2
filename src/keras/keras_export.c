/* dtrain model -> .keras file (see dtrain/keras.h).
 *
 * Each dtrain layer becomes one Keras layer (a dense layer on a (T, F) or image input
 * that is not time-distributed gets a Flatten before it, since Keras' Dense works on
 * the last axis). The layers are first listed as nodes, each with its class, its
 * options, its weights and the node it takes its input from; config.json and
 * model.weights.h5 are then written from that list. Keras names a layer's weight group
 * by its class in snake case, numbered from the second one on (dense, dense_1, ...);
 * we give the layers those same names. dtrain's weight layouts are Keras' (kernel
 * (in, units), LSTM gates i, f, c, o, GRU z, r, h with a (2, 3 units) bias), so the
 * values are written as they are. */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#include "dtrain/keras.h"
#include "h5.h"
#include "jsonw.h"
#include "zip_write.h"

enum { MAX_W = 8 };

typedef struct {
  const char *sub; /* the dataset under layers/<name>/: "vars/0", "cell/vars/1", ... */
  const float *data;
  dt_shape_t shape;
} weight_t;

typedef struct {
  const char *cls; /* Keras class name */
  char name[64];   /* layer name, also its weight group */
  const dt_layer_t *layer; /* NULL for an inserted Flatten */
  int input;       /* the node it reads (-1: the model's input); for Functional graphs */
  weight_t w[MAX_W];
  int nw;
} node_t;

typedef struct {
  const dt_model_t *m;
  dt_config_t *cfg;
  node_t *nodes;
  int n;
} export_t;

/* Keras' snake_case of a class name, for the classes we write. */
static const char *snake(const char *cls) {
  static const char *const map[][2] = {
      {"Dense", "dense"}, {"Flatten", "flatten"}, {"Reshape", "reshape"},
      {"Conv1D", "conv1d"}, {"Conv2D", "conv2d"}, {"Conv2DTranspose", "conv2d_transpose"},
      {"MaxPooling2D", "max_pooling2d"}, {"AveragePooling2D", "average_pooling2d"},
      {"GlobalAveragePooling1D", "global_average_pooling1d"},
      {"GlobalAveragePooling2D", "global_average_pooling2d"},
      {"GlobalMaxPooling1D", "global_max_pooling1d"},
      {"GlobalMaxPooling2D", "global_max_pooling2d"},
      {"BatchNormalization", "batch_normalization"}, {"Dropout", "dropout"},
      {"Embedding", "embedding"}, {"SimpleRNN", "simple_rnn"}, {"LSTM", "lstm"}, {"GRU", "gru"},
      {"Bidirectional", "bidirectional"}, {"Activation", "activation"},
      {"LeakyReLU", "leaky_re_lu"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], cls) == 0) return map[i][1];
  return "layer";
}

static node_t *add_node(export_t *x, const char *cls, const dt_layer_t *l) {
  node_t *nd = &x->nodes[x->n];
  memset(nd, 0, sizeof *nd);
  nd->cls = cls;
  nd->layer = l;
  nd->input = x->n - 1;
  int same = 0;
  for (int i = 0; i < x->n; i++) same += strcmp(snake(x->nodes[i].cls), snake(cls)) == 0;
  if (same)
    snprintf(nd->name, sizeof nd->name, "%s_%d", snake(cls), same);
  else
    snprintf(nd->name, sizeof nd->name, "%s", snake(cls));
  x->n++;
  return nd;
}

static void add_weight(node_t *nd, const char *sub, const float *data, dt_shape_t shape) {
  nd->w[nd->nw++] = (weight_t){sub, data, shape};
}

/* The Keras class of dtrain layer l, or NULL. */
static const char *keras_class(const dt_layer_t *l, dt_config_t *cfg) {
  const char *t = l->ops->type;
  bool seq = l->in_shape.ndim == 2;
  if (!strcmp(t, "dense")) return "Dense";
  if (!strcmp(t, "conv1d")) return "Conv1D";
  if (!strcmp(t, "conv2d")) return "Conv2D";
  if (!strcmp(t, "conv2d_transpose")) return "Conv2DTranspose";
  if (!strcmp(t, "max_pool2d")) return "MaxPooling2D";
  if (!strcmp(t, "avg_pool2d")) return "AveragePooling2D";
  if (!strcmp(t, "global_avg_pool")) return seq ? "GlobalAveragePooling1D" : "GlobalAveragePooling2D";
  if (!strcmp(t, "global_max_pool")) return seq ? "GlobalMaxPooling1D" : "GlobalMaxPooling2D";
  if (!strcmp(t, "flatten")) return "Flatten";
  if (!strcmp(t, "reshape")) return "Reshape";
  if (!strcmp(t, "batch_norm")) return "BatchNormalization";
  if (!strcmp(t, "dropout")) return "Dropout";
  if (!strcmp(t, "embedding")) return "Embedding";
  if (!strcmp(t, "simple_rnn")) return "SimpleRNN";
  if (!strcmp(t, "lstm")) return "LSTM";
  if (!strcmp(t, "gru")) return "GRU";
  if (!strcmp(t, "bidirectional")) return "Bidirectional";
  if (!strcmp(t, "relu") || !strcmp(t, "sigmoid") || !strcmp(t, "tanh") || !strcmp(t, "softmax"))
    return "Activation";
  if (!strcmp(t, "leaky_relu")) return "LeakyReLU";
  (void)cfg;
  return NULL;
}

/* Lists the nodes; p and s walk the parameter and state tensors in layer order. */
static int plan(export_t *x, const float *params, const float *states, dt_error_t *err) {
  const dt_model_t *m = x->m;
  int p = 0, s = 0;
  static const char *const vars[] = {"vars/0", "vars/1", "vars/2", "vars/3"};
  static const char *const cell[] = {"cell/vars/0", "cell/vars/1", "cell/vars/2"};
  static const char *const bi[] = {"forward_layer/cell/vars/0", "forward_layer/cell/vars/1",
                                   "forward_layer/cell/vars/2", "backward_layer/cell/vars/0",
                                   "backward_layer/cell/vars/1", "backward_layer/cell/vars/2"};
  for (int i = 0; i < m->nlayers; i++) {
    const dt_layer_t *l = &m->layers[i];
    const char *cls = keras_class(l, x->cfg);
    if (!cls)
      return dt_error_set(err, DT_ERR_ARG,
                          "layer %s ([%s] type = %s) has no Keras counterpart that we export",
                          l->name, l->section, l->ops->type);
    if (!strcmp(cls, "Dense") && l->in_shape.ndim > 1 && l->param_decl[0].shape.dims[0] !=
                                                             l->in_shape.dims[l->in_shape.ndim - 1])
      add_node(x, "Flatten", NULL);
    else if (!strcmp(cls, "Dense") && l->in_shape.ndim > 2)
      add_node(x, "Flatten", NULL);
    node_t *nd = add_node(x, cls, l);
    const char *const *subs = !strcmp(cls, "Bidirectional") ? bi
                              : (!strcmp(cls, "SimpleRNN") || !strcmp(cls, "LSTM") ||
                                 !strcmp(cls, "GRU"))
                                  ? cell
                                  : vars;
    for (int k = 0; k < l->nparams; k++, p++)
      add_weight(nd, subs[k], params + m->params[p].offset, m->params[p].shape);
    for (int k = 0; k < l->nstates; k++, s++)
      add_weight(nd, vars[l->nparams + k], states + m->states[s].offset, m->states[s].shape);
  }
  return 0;
}

/* A config list key as Keras writes it: always a list, one value per spatial axis. */
static int int_list(dt_config_t *cfg, const char *section, const char *key, int def, int dims,
                    int *out, dt_error_t *err) {
  if (!dt_config_has_key(cfg, section, key)) {
    for (int i = 0; i < dims; i++) out[i] = def;
    return 0;
  }
  int count, rc = dt_config_get_int_list(cfg, section, key, out, dims, &count, err);
  if (rc) return rc;
  for (int i = count; i < dims; i++) out[i] = out[0];
  return 0;
}

static void common(dt_jsonw_t *w, const node_t *nd) {
  dt_jsonw_key(w, "name");
  dt_jsonw_string(w, nd->name);
  dt_jsonw_key(w, "trainable");
  dt_jsonw_bool(w, true);
  dt_jsonw_key(w, "dtype");
  dt_jsonw_string(w, "float32");
}

/* The recurrent layer's own options (also inside a Bidirectional). */
static void rnn_config(dt_jsonw_t *w, const char *cls, int units, bool seq, bool backwards) {
  dt_jsonw_key(w, "units");
  dt_jsonw_int(w, units);
  dt_jsonw_key(w, "activation");
  dt_jsonw_string(w, "tanh");
  if (strcmp(cls, "SimpleRNN") != 0) {
    dt_jsonw_key(w, "recurrent_activation");
    dt_jsonw_string(w, "sigmoid");
  }
  dt_jsonw_key(w, "use_bias");
  dt_jsonw_bool(w, true);
  dt_jsonw_key(w, "return_sequences");
  dt_jsonw_bool(w, seq);
  dt_jsonw_key(w, "go_backwards");
  dt_jsonw_bool(w, backwards);
  if (!strcmp(cls, "GRU")) {
    dt_jsonw_key(w, "reset_after");
    dt_jsonw_bool(w, true);
  }
}

static int layer_config(export_t *x, dt_jsonw_t *w, const node_t *nd, dt_error_t *err) {
  dt_config_t *cfg = x->cfg;
  const dt_layer_t *l = nd->layer;
  const char *cls = nd->cls, *sec = l ? l->section : NULL;
  int rc = 0;
  common(w, nd);
  if (!l) return 0; /* Flatten */
  const char *t = l->ops->type;
  if (!strcmp(cls, "Dense")) {
    dt_jsonw_key(w, "units");
    dt_jsonw_int(w, l->param_decl[0].shape.dims[1]);
    dt_jsonw_key(w, "activation");
    dt_jsonw_string(w, "linear");
    dt_jsonw_key(w, "use_bias");
    dt_jsonw_bool(w, true);
  } else if (!strcmp(cls, "Conv1D") || !strcmp(cls, "Conv2D") || !strcmp(cls, "Conv2DTranspose")) {
    int dims = !strcmp(cls, "Conv1D") ? 1 : 2, k[2], s[2], d[2];
    const dt_shape_t *ks = &l->param_decl[0].shape;
    for (int i = 0; i < dims; i++) k[i] = ks->dims[i];
    const char *pad;
    if ((rc = int_list(cfg, sec, "strides", 1, dims, s, err)) ||
        (rc = int_list(cfg, sec, "dilation_rate", 1, dims, d, err)) ||
        (rc = dt_config_get_string(cfg, sec, "padding", "valid", &pad, err)))
      return rc;
    dt_jsonw_key(w, "filters");
    dt_jsonw_int(w, l->out_shape.dims[l->out_shape.ndim - 1]);
    dt_jsonw_key(w, "kernel_size");
    dt_jsonw_ints(w, k, dims, false);
    dt_jsonw_key(w, "strides");
    dt_jsonw_ints(w, s, dims, false);
    dt_jsonw_key(w, "padding");
    dt_jsonw_string(w, pad);
    dt_jsonw_key(w, "data_format");
    dt_jsonw_string(w, "channels_last");
    dt_jsonw_key(w, "dilation_rate");
    dt_jsonw_ints(w, d, dims, false);
    dt_jsonw_key(w, "activation");
    dt_jsonw_string(w, "linear");
    dt_jsonw_key(w, "use_bias");
    dt_jsonw_bool(w, l->nparams > 1);
  } else if (!strcmp(cls, "MaxPooling2D") || !strcmp(cls, "AveragePooling2D")) {
    int k[2], s[2];
    const char *pad;
    if ((rc = int_list(cfg, sec, "pool_size", 2, 2, k, err))) return rc;
    if (dt_config_has_key(cfg, sec, "strides")) {
      if ((rc = int_list(cfg, sec, "strides", 1, 2, s, err))) return rc;
    } else {
      s[0] = k[0], s[1] = k[1];
    }
    if ((rc = dt_config_get_string(cfg, sec, "padding", "valid", &pad, err))) return rc;
    dt_jsonw_key(w, "pool_size");
    dt_jsonw_ints(w, k, 2, false);
    dt_jsonw_key(w, "strides");
    dt_jsonw_ints(w, s, 2, false);
    dt_jsonw_key(w, "padding");
    dt_jsonw_string(w, pad);
    dt_jsonw_key(w, "data_format");
    dt_jsonw_string(w, "channels_last");
  } else if (!strncmp(cls, "Global", 6)) {
    dt_jsonw_key(w, "data_format");
    dt_jsonw_string(w, "channels_last");
    dt_jsonw_key(w, "keepdims");
    dt_jsonw_bool(w, false);
  } else if (!strcmp(cls, "Reshape")) {
    dt_jsonw_key(w, "target_shape");
    dt_jsonw_ints(w, l->out_shape.dims, l->out_shape.ndim, false);
  } else if (!strcmp(cls, "BatchNormalization")) {
    double momentum, epsilon;
    if ((rc = dt_config_get_double(cfg, sec, "momentum", 0.99, 0.0, 1.0, &momentum, err)) ||
        (rc = dt_config_get_double(cfg, sec, "epsilon", 1e-3, 1e-12, 1.0, &epsilon, err)))
      return rc;
    bool scale = false, center = false;
    for (int i = 0; i < l->nparams; i++) {
      const char *dot = strrchr(l->param_decl[i].name, '.');
      const char *suffix = dot ? dot + 1 : l->param_decl[i].name;
      scale |= !strcmp(suffix, "gamma");
      center |= !strcmp(suffix, "beta");
    }
    dt_jsonw_key(w, "axis");
    dt_jsonw_int(w, -1);
    dt_jsonw_key(w, "momentum");
    dt_jsonw_double(w, momentum);
    dt_jsonw_key(w, "epsilon");
    dt_jsonw_double(w, epsilon);
    dt_jsonw_key(w, "center");
    dt_jsonw_bool(w, center);
    dt_jsonw_key(w, "scale");
    dt_jsonw_bool(w, scale);
  } else if (!strcmp(cls, "Dropout")) {
    double rate;
    if ((rc = dt_config_get_double(cfg, sec, "rate", 0.5, 0.0, 0.999, &rate, err))) return rc;
    dt_jsonw_key(w, "rate");
    dt_jsonw_double(w, rate);
  } else if (!strcmp(cls, "Embedding")) {
    dt_jsonw_key(w, "input_dim");
    dt_jsonw_int(w, l->param_decl[0].shape.dims[0]);
    dt_jsonw_key(w, "output_dim");
    dt_jsonw_int(w, l->param_decl[0].shape.dims[1]);
  } else if (!strcmp(cls, "SimpleRNN") || !strcmp(cls, "LSTM") || !strcmp(cls, "GRU")) {
    rnn_config(w, cls, l->param_decl[1].shape.dims[0], l->out_shape.ndim == 2, false);
  } else if (!strcmp(cls, "Bidirectional")) {
    int units = l->param_decl[1].shape.dims[0];
    int gates = l->param_decl[1].shape.dims[1] / units;
    const char *inner = gates == 4 ? "LSTM" : gates == 3 ? "GRU" : "SimpleRNN";
    bool seq = l->out_shape.ndim == 2;
    int width = l->out_shape.dims[l->out_shape.ndim - 1];
    dt_jsonw_key(w, "merge_mode");
    dt_jsonw_string(w, width == 2 * units ? "concat" : "sum");
    dt_jsonw_key(w, "layer");
    dt_jsonw_begin_object(w);
    dt_jsonw_key(w, "module");
    dt_jsonw_string(w, "keras.layers");
    dt_jsonw_key(w, "class_name");
    dt_jsonw_string(w, inner);
    dt_jsonw_key(w, "config");
    dt_jsonw_begin_object(w);
    char inner_name[80];
    snprintf(inner_name, sizeof inner_name, "%s_%s", nd->name, snake(inner));
    dt_jsonw_key(w, "name");
    dt_jsonw_string(w, inner_name);
    rnn_config(w, inner, units, seq, false);
    dt_jsonw_end_object(w);
    dt_jsonw_key(w, "registered_name");
    dt_jsonw_null(w);
    dt_jsonw_end_object(w);
  } else if (!strcmp(cls, "Activation")) {
    dt_jsonw_key(w, "activation");
    dt_jsonw_string(w, t);
  } else if (!strcmp(cls, "LeakyReLU")) {
    double alpha;
    if ((rc = dt_config_get_double(cfg, sec, "alpha", 0.3, 0.0, 1e6, &alpha, err))) return rc;
    dt_jsonw_key(w, "negative_slope");
    dt_jsonw_double(w, alpha);
  }
  return 0;
}

static void input_shape(const dt_model_t *m, dt_jsonw_t *w) {
  dt_jsonw_ints(w, m->in_shape.dims, m->in_shape.ndim, true);
}

static int write_config(export_t *x, dt_jsonw_t *w, dt_error_t *err) {
  int rc;
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "module");
  dt_jsonw_string(w, "keras");
  dt_jsonw_key(w, "class_name");
  dt_jsonw_string(w, "Sequential");
  dt_jsonw_key(w, "config");
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "name");
  dt_jsonw_string(w, "sequential");
  dt_jsonw_key(w, "trainable");
  dt_jsonw_bool(w, true);
  dt_jsonw_key(w, "layers");
  dt_jsonw_begin_array(w);
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "module");
  dt_jsonw_string(w, "keras.layers");
  dt_jsonw_key(w, "class_name");
  dt_jsonw_string(w, "InputLayer");
  dt_jsonw_key(w, "config");
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "batch_shape");
  input_shape(x->m, w);
  dt_jsonw_key(w, "dtype");
  dt_jsonw_string(w, "float32");
  dt_jsonw_key(w, "sparse");
  dt_jsonw_bool(w, false);
  dt_jsonw_key(w, "name");
  dt_jsonw_string(w, "input_layer");
  dt_jsonw_end_object(w);
  dt_jsonw_key(w, "registered_name");
  dt_jsonw_null(w);
  dt_jsonw_end_object(w);
  for (int i = 0; i < x->n; i++) {
    const node_t *nd = &x->nodes[i];
    dt_jsonw_begin_object(w);
    dt_jsonw_key(w, "module");
    dt_jsonw_string(w, "keras.layers");
    dt_jsonw_key(w, "class_name");
    dt_jsonw_string(w, nd->cls);
    dt_jsonw_key(w, "config");
    dt_jsonw_begin_object(w);
    if ((rc = layer_config(x, w, nd, err))) return rc;
    dt_jsonw_end_object(w);
    dt_jsonw_key(w, "registered_name");
    dt_jsonw_null(w);
    dt_jsonw_end_object(w);
  }
  dt_jsonw_end_array(w);
  dt_jsonw_key(w, "build_input_shape");
  input_shape(x->m, w);
  dt_jsonw_end_object(w);
  dt_jsonw_key(w, "registered_name");
  dt_jsonw_null(w);
  dt_jsonw_key(w, "build_config");
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "input_shape");
  input_shape(x->m, w);
  dt_jsonw_end_object(w);
  dt_jsonw_key(w, "compile_config");
  dt_jsonw_null(w);
  dt_jsonw_end_object(w);
  return 0;
}

/* The weights file: every layer's groups (Keras reads each layer's, weights or not),
 * its datasets, and the model's own empty "vars" group. */
static int write_weights(export_t *x, void **data, size_t *len, dt_error_t *err) {
  dt_h5_t *h;
  int rc = dt_h5_create("model.weights.h5", &h, err);
  if (rc) return rc;
  char path[256];
  rc = dt_h5_group(h, "layers", NULL, err);
  for (int i = 0; !rc && i < x->n; i++) {
    const node_t *nd = &x->nodes[i];
    snprintf(path, sizeof path, "layers/%s/vars", nd->name);
    rc = dt_h5_group(h, path, nd->name, err);
    bool rnn = nd->nw && !strncmp(nd->w[0].sub, "cell/", 5);
    bool bi = nd->nw && !strncmp(nd->w[0].sub, "forward_layer/", 14);
    if (!rc && rnn) {
      snprintf(path, sizeof path, "layers/%s/cell/vars", nd->name);
      rc = dt_h5_group(h, path, "cell", err);
    }
    for (int d = 0; bi && !rc && d < 2; d++) {
      const char *dir = d ? "backward_layer" : "forward_layer";
      snprintf(path, sizeof path, "layers/%s/%s/vars", nd->name, dir);
      if (!(rc = dt_h5_group(h, path, dir, err))) {
        snprintf(path, sizeof path, "layers/%s/%s/cell/vars", nd->name, dir);
        rc = dt_h5_group(h, path, "cell", err);
      }
    }
    for (int k = 0; !rc && k < nd->nw; k++) {
      snprintf(path, sizeof path, "layers/%s/%s", nd->name, nd->w[k].sub);
      rc = dt_h5_write(h, path, &nd->w[k].shape, nd->w[k].data, err);
    }
  }
  if (!rc) rc = dt_h5_group(h, "vars", "sequential", err);
  if (!rc) rc = dt_h5_image(h, data, len, err);
  dt_h5_close(h);
  return rc;
}

static int write_file(const char *path, const void *data, size_t len, dt_error_t *err) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return dt_error_set(err, DT_ERR_ARG, "%s: path too long", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  bool ok = fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return dt_error_set(err, DT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  return 0;
}

int dt_keras_export(const dt_model_t *m, dt_config_t *cfg, const float *params,
                    const float *states, const char *path, dt_error_t *err) {
  export_t x = {m, cfg, calloc((size_t)m->nlayers * 2 + 1, sizeof(node_t)), 0};
  if (!x.nodes) return dt_error_set(err, DT_ERR_NOMEM, "out of memory exporting %s", path);
  dt_jsonw_t cw = {0}, mw = {0};
  dt_zip_writer_t z = {0};
  void *h5 = NULL;
  size_t h5_len = 0;
  const char *config_text, *meta_text;
  int rc = plan(&x, params, states, err);
  if (!rc) rc = write_config(&x, &cw, err);
  if (!rc) rc = dt_jsonw_finish(&cw, &config_text, err);
  if (!rc) rc = write_weights(&x, &h5, &h5_len, err);
  if (!rc) {
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", gmtime_r(&now, &tm));
    dt_jsonw_begin_object(&mw);
    /* The Keras version whose format we write (checked against Keras 3.15). */
    dt_jsonw_key(&mw, "keras_version");
    dt_jsonw_string(&mw, "3.15.1");
    dt_jsonw_key(&mw, "date_saved");
    dt_jsonw_string(&mw, date);
    dt_jsonw_end_object(&mw);
    rc = dt_jsonw_finish(&mw, &meta_text, err);
  }
  if (!rc) rc = dt_zip_writer_add(&z, "metadata.json", meta_text, strlen(meta_text), err);
  if (!rc) rc = dt_zip_writer_add(&z, "config.json", config_text, strlen(config_text), err);
  if (!rc) rc = dt_zip_writer_add(&z, "model.weights.h5", h5, h5_len, err);
  if (!rc) rc = dt_zip_writer_finish(&z, err);
  if (!rc) rc = write_file(path, z.buf, z.len, err);
  if (rc) dt_error_prefix(err, "exporting %s: ", path);
  dt_zip_writer_free(&z);
  dt_jsonw_free(&cw);
  dt_jsonw_free(&mw);
  free(h5);
  free(x.nodes);
  return rc;
}
