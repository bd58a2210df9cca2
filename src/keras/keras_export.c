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

#include "dtrain/keras.h"
#include "file_io.h"
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
  const dt_layer_t *layer; /* NULL for an inserted Flatten or Activation */
  const char *activation;  /* an inserted Activation's function */
  int in[DT_MAX_LAYER_INPUTS]; /* the nodes it reads (-1: the model's input) */
  int nin;
  dt_shape_t out;  /* its output's per-sample shape */
  weight_t w[MAX_W];
  int nw;
  int depth, visit; /* Keras' graph order (functional_order) */
} node_t;

typedef struct {
  const dt_model_t *m;
  dt_config_t *cfg;
  node_t *nodes;
  int n;
  bool functional; /* not a chain: written as a Functional model */
  int *order;      /* the nodes in the order the config lists them */
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
      {"LeakyReLU", "leaky_re_lu"}, {"Add", "add"}, {"Subtract", "subtract"},
      {"Multiply", "multiply"}, {"Average", "average"}, {"Maximum", "maximum"},
      {"Concatenate", "concatenate"}, {"UpSampling2D", "up_sampling2d"},
      {"ZeroPadding2D", "zero_padding2d"}, {"InputLayer", "input_layer"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], cls) == 0) return map[i][1];
  return "layer";
}

static node_t *add_node(export_t *x, const char *cls, const dt_layer_t *l) {
  node_t *nd = &x->nodes[x->n++];
  memset(nd, 0, sizeof *nd);
  nd->cls = cls;
  nd->layer = l;
  if (l) nd->out = l->out_shape;
  return nd;
}

/* Names in config order: Keras names a layer's weight group by its class in snake case,
 * counted in the order of model.layers (which a Functional model's InputLayer starts). */
static void name_nodes(export_t *x) {
  for (int j = 0; j < x->n; j++) {
    node_t *nd = &x->nodes[x->order[j]];
    int same = x->functional && !strcmp(snake(nd->cls), "input_layer");
    for (int i = 0; i < j; i++) same += strcmp(snake(x->nodes[x->order[i]].cls), snake(nd->cls)) == 0;
    if (same)
      snprintf(nd->name, sizeof nd->name, "%s_%d", snake(nd->cls), same);
    else
      snprintf(nd->name, sizeof nd->name, "%s", snake(nd->cls));
  }
}

/* Keras' order of a Functional model's layers (model.layers, which also numbers the
 * weight groups): by depth, the longest path to the output, deepest first; ties by
 * the order in which a depth-first walk from the output, inputs in order, first
 * reaches each layer. */
static void visit(export_t *x, int i, int *count) {
  node_t *nd = &x->nodes[i];
  if (nd->visit >= 0) return;
  nd->visit = (*count)++;
  for (int k = 0; k < nd->nin; k++)
    if (nd->in[k] >= 0) visit(x, nd->in[k], count);
}

static void functional_order(export_t *x) {
  for (int i = 0; i < x->n; i++) x->nodes[i].visit = -1, x->nodes[i].depth = 0;
  int count = 0;
  visit(x, x->n - 1, &count);
  /* Nodes are in topological order, the output last: one backward pass gives each its
   * longest path to the output. */
  for (int i = x->n - 1; i >= 0; i--)
    for (int k = 0; k < x->nodes[i].nin; k++) {
      node_t *p = x->nodes[i].in[k] >= 0 ? &x->nodes[x->nodes[i].in[k]] : NULL;
      if (p && p->depth < x->nodes[i].depth + 1) p->depth = x->nodes[i].depth + 1;
    }
  for (int i = 0; i < x->n; i++) x->order[i] = i;
  /* Insertion sort: (depth descending, visit ascending). */
  for (int i = 1; i < x->n; i++) {
    int v = x->order[i], j = i;
    while (j > 0) {
      const node_t *a = &x->nodes[x->order[j - 1]], *b = &x->nodes[v];
      if (a->depth > b->depth || (a->depth == b->depth && a->visit < b->visit)) break;
      x->order[j] = x->order[j - 1];
      j--;
    }
    x->order[j] = v;
  }
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
  if (!strcmp(t, "add")) return "Add";
  if (!strcmp(t, "subtract")) return "Subtract";
  if (!strcmp(t, "multiply")) return "Multiply";
  if (!strcmp(t, "average")) return "Average";
  if (!strcmp(t, "maximum")) return "Maximum";
  if (!strcmp(t, "concatenate")) return "Concatenate";
  if (!strcmp(t, "upsampling2d")) return "UpSampling2D";
  if (!strcmp(t, "zero_padding2d")) return "ZeroPadding2D";
  (void)cfg;
  return NULL;
}

/* Lists the nodes; p and s walk the parameter and state tensors in layer order. */
static int plan(export_t *x, const float *params, const float *states, int *node_of,
                dt_error_t *err) {
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
    /* The nodes of the layer's inputs. */
    int in[DT_MAX_LAYER_INPUTS], nin = l->ninputs > 0 ? l->ninputs : 1;
    for (int k = 0; k < nin; k++) {
      int p = l->ninputs > 0 ? l->inputs[k] : i - 1;
      in[k] = p < 0 ? -1 : node_of[p];
    }
    bool flat = !strcmp(cls, "Dense") && l->in_shape.ndim > 1 &&
                (l->in_shape.ndim > 2 ||
                 l->param_decl[0].shape.dims[0] != l->in_shape.dims[l->in_shape.ndim - 1]);
    if (flat) {
      node_t *f = add_node(x, "Flatten", NULL);
      f->in[0] = in[0], f->nin = 1;
      f->out = dt_shape_1d((int)dt_shape_size(&l->in_shape));
      in[0] = x->n - 1;
    }
    node_t *nd = add_node(x, cls, l);
    memcpy(nd->in, in, sizeof in);
    nd->nin = nin;
    node_of[i] = x->n - 1;
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
  /* The model gives probabilities, as predict does: a cross-entropy loss on logits
   * implies a softmax or sigmoid after the last layer (unless the config ends in one,
   * which the loss fuses and the loop above wrote). dtrain's softmax runs over all the
   * values of a sample, Keras' over the last axis: the same for one axis only. */
  if (m->nrun == m->nlayers && m->nrun > 0 &&
      (m->loss == DT_LOSS_SOFTMAX_CE || m->loss == DT_LOSS_BCE_LOGITS)) {
    const bool softmax = m->loss == DT_LOSS_SOFTMAX_CE;
    const int out = m->outputs[0].act - 1; /* the output's layer: acts[p + 1] is layer p */
    if (softmax && m->out_shape.ndim != 1)
      return dt_error_set(err, DT_ERR_ARG,
                          "the loss's softmax over the %d-axis output of layer %s has no "
                          "Keras Activation that computes it (Keras' softmax runs over the "
                          "last axis only)",
                          m->out_shape.ndim, m->layers[out].name);
    node_t *a = add_node(x, "Activation", NULL);
    a->activation = softmax ? "softmax" : "sigmoid";
    a->in[0] = node_of[out], a->nin = 1;
    a->out = m->out_shape;
  }
  /* A chain is written as a Sequential model, anything else as a Functional one. */
  for (int i = 0; i < x->n; i++)
    if (x->nodes[i].nin != 1 || x->nodes[i].in[0] != i - 1) x->functional = true;
  if (x->functional)
    functional_order(x);
  else
    for (int i = 0; i < x->n; i++) x->order[i] = i;
  name_nodes(x);
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
  if (!l) { /* an inserted Flatten, or the Activation a cross-entropy on logits implies */
    if (nd->activation) {
      dt_jsonw_key(w, "activation");
      dt_jsonw_string(w, nd->activation);
    }
    return 0;
  }
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
  } else if (!strcmp(cls, "Concatenate")) {
    long axis;
    if ((rc = dt_config_get_int(cfg, sec, "axis", -1, -8, 8, &axis, err))) return rc;
    dt_jsonw_key(w, "axis");
    dt_jsonw_int(w, axis);
  } else if (!strcmp(cls, "UpSampling2D")) {
    int size[2] = {l->out_shape.dims[0] / l->in_shape.dims[0],
                   l->out_shape.dims[1] / l->in_shape.dims[1]};
    dt_jsonw_key(w, "size");
    dt_jsonw_ints(w, size, 2, false);
    dt_jsonw_key(w, "data_format");
    dt_jsonw_string(w, "channels_last");
    dt_jsonw_key(w, "interpolation");
    dt_jsonw_string(w, "nearest");
  } else if (!strcmp(cls, "ZeroPadding2D")) {
    /* The layer has checked the value: 1, 2 or 4 integers >= 0. */
    int v[4] = {1, 1, 1, 1};
    const char *pad;
    if ((rc = dt_config_get_string(cfg, sec, "padding", "1", &pad, err))) return rc;
    int n = sscanf(pad, "%d , %d , %d , %d", &v[0], &v[1], &v[2], &v[3]);
    int tb[2], lr[2];
    if (n == 1) tb[0] = tb[1] = lr[0] = lr[1] = v[0];
    else if (n == 2) tb[0] = tb[1] = v[0], lr[0] = lr[1] = v[1];
    else tb[0] = v[0], tb[1] = v[1], lr[0] = v[2], lr[1] = v[3];
    dt_jsonw_key(w, "padding");
    dt_jsonw_begin_array(w);
    dt_jsonw_ints(w, tb, 2, false);
    dt_jsonw_ints(w, lr, 2, false);
    dt_jsonw_end_array(w);
    dt_jsonw_key(w, "data_format");
    dt_jsonw_string(w, "channels_last");
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

/* A Keras tensor: the output of node i (-1: the InputLayer) in inbound_nodes. */
static void tensor(export_t *x, dt_jsonw_t *w, int i) {
  const dt_shape_t *s = i >= 0 ? &x->nodes[i].out : &x->m->in_shape;
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "class_name");
  dt_jsonw_string(w, "__keras_tensor__");
  dt_jsonw_key(w, "config");
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "shape");
  dt_jsonw_ints(w, s->dims, s->ndim, true);
  dt_jsonw_key(w, "dtype");
  dt_jsonw_string(w, "float32");
  dt_jsonw_key(w, "keras_history");
  dt_jsonw_begin_array(w);
  dt_jsonw_string(w, i >= 0 ? x->nodes[i].name : "input_layer");
  dt_jsonw_int(w, 0);
  dt_jsonw_int(w, 0);
  dt_jsonw_end_array(w);
  dt_jsonw_end_object(w);
  dt_jsonw_end_object(w);
}

static void input_layer(export_t *x, dt_jsonw_t *w) {
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
  if (x->functional) {
    dt_jsonw_key(w, "name");
    dt_jsonw_string(w, "input_layer");
    dt_jsonw_key(w, "inbound_nodes");
    dt_jsonw_begin_array(w);
    dt_jsonw_end_array(w);
  }
  dt_jsonw_end_object(w);
}

static int write_config(export_t *x, dt_jsonw_t *w, dt_error_t *err) {
  int rc;
  const char *model = x->functional ? "functional" : "sequential";
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "module");
  dt_jsonw_string(w, x->functional ? "keras.src.models.functional" : "keras");
  dt_jsonw_key(w, "class_name");
  dt_jsonw_string(w, x->functional ? "Functional" : "Sequential");
  dt_jsonw_key(w, "config");
  dt_jsonw_begin_object(w);
  dt_jsonw_key(w, "name");
  dt_jsonw_string(w, model);
  dt_jsonw_key(w, "trainable");
  dt_jsonw_bool(w, true);
  dt_jsonw_key(w, "layers");
  dt_jsonw_begin_array(w);
  input_layer(x, w);
  for (int j = 0; j < x->n; j++) {
    const node_t *nd = &x->nodes[x->order[j]];
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
    if (x->functional) {
      dt_jsonw_key(w, "name");
      dt_jsonw_string(w, nd->name);
      /* One call: args holds the input tensor, or a list of them for a merge. */
      dt_jsonw_key(w, "inbound_nodes");
      dt_jsonw_begin_array(w);
      dt_jsonw_begin_object(w);
      dt_jsonw_key(w, "args");
      dt_jsonw_begin_array(w);
      bool merge = nd->layer && nd->layer->ops->max_inputs > 1;
      if (merge) dt_jsonw_begin_array(w);
      for (int k = 0; k < nd->nin; k++) tensor(x, w, nd->in[k]);
      if (merge) dt_jsonw_end_array(w);
      dt_jsonw_end_array(w);
      dt_jsonw_key(w, "kwargs");
      dt_jsonw_begin_object(w);
      dt_jsonw_end_object(w);
      dt_jsonw_end_object(w);
      dt_jsonw_end_array(w);
    }
    dt_jsonw_end_object(w);
  }
  dt_jsonw_end_array(w);
  if (x->functional) {
    dt_jsonw_key(w, "input_layers");
    dt_jsonw_begin_array(w);
    dt_jsonw_string(w, "input_layer");
    dt_jsonw_int(w, 0);
    dt_jsonw_int(w, 0);
    dt_jsonw_end_array(w);
    dt_jsonw_key(w, "output_layers");
    dt_jsonw_begin_array(w);
    dt_jsonw_string(w, x->nodes[x->n - 1].name);
    dt_jsonw_int(w, 0);
    dt_jsonw_int(w, 0);
    dt_jsonw_end_array(w);
  } else {
    dt_jsonw_key(w, "build_input_shape");
    input_shape(x->m, w);
  }
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
  if (!rc && x->functional) rc = dt_h5_group(h, "layers/input_layer/vars", "input_layer", err);
  for (int j = 0; !rc && j < x->n; j++) {
    const node_t *nd = &x->nodes[x->order[j]];
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
  if (!rc) rc = dt_h5_group(h, "vars", x->functional ? "functional" : "sequential", err);
  if (!rc) rc = dt_h5_image(h, data, len, err);
  dt_h5_close(h);
  return rc;
}

int dt_keras_export(const dt_model_t *m, dt_config_t *cfg, const float *params,
                    const float *states, const char *path, dt_error_t *err) {
  if (m->nin > 1 || m->nout > 1)
    return dt_error_set(err, DT_ERR_ARG,
                        "Keras export '%s': the model has %d inputs and %d outputs; the exporter "
                        "takes one of each", path, m->nin, m->nout);
  export_t x = {m, cfg, calloc((size_t)m->nlayers * 2 + 1, sizeof(node_t)), 0, false,
                calloc((size_t)m->nlayers * 2 + 1, sizeof(int))};
  int *node_of = calloc((size_t)m->nlayers + 1, sizeof(int));
  if (!x.nodes || !x.order || !node_of) {
    free(x.nodes);
    free(x.order);
    free(node_of);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory exporting %s", path);
  }
  dt_jsonw_t cw = {0}, mw = {0};
  dt_zip_writer_t z = {0};
  void *h5 = NULL;
  size_t h5_len = 0;
  const char *config_text, *meta_text;
  int rc = plan(&x, params, states, node_of, err);
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
  if (!rc) rc = keras_write_file(path, z.buf, z.len, err);
  if (rc) dt_error_prefix(err, "exporting %s: ", path);
  dt_zip_writer_free(&z);
  dt_jsonw_free(&cw);
  dt_jsonw_free(&mw);
  free(h5);
  free(x.nodes);
  free(x.order);
  free(node_of);
  return rc;
}
