/* A Keras model's architecture (JSON) -> a dtrain model config and where each of its
 * weights is in model.weights.h5 (see keras_config.h).
 *
 * The architecture (a Sequential model, or a Functional one whose layers form a single
 * chain) is read layer by layer: each Keras layer becomes one [layer.N] section (a
 * Dense or convolution's activation becomes its `activation` key), or nothing (an
 * InputLayer, a linear Activation), or an error naming the layer and its class. For
 * each weighted layer we note where Keras keeps its weights in model.weights.h5
 * (layers/<snake_case class>[_k]/vars/i, cell/vars/i for recurrent layers). The dtrain
 * model is then built from the config on the CPU device, which names and shapes every
 * parameter and state tensor, and the weights are read into them in order, each
 * dataset's shape checked against the tensor's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras_config.h"

#include "ini_out.h"

typedef dt_keras_src_t src_t;

typedef struct {
  const char *what;
  dt_text_t ini;
  int nsec;
  src_t *p, *s;
  int np, ns, pcap, scap;
  char label[DT_KERAS_LABEL_LEN]; /* the layer being read */
  /* Keras' weight-group names seen so far: snake name and count. */
  char (*names)[64];
  int *counts, nnames;
  const char *last_activation; /* of the last layer, for the loss */
  int input[4], input_ndim;
  /* Functional models: every section gets name = sN and inputs = ..., the references
   * (a section's name, or "input") of the Keras layers it is called on. */
  bool functional;
  char inputs_line[1024]; /* for the next section */
  char (*knames)[64];     /* each Keras layer read so far, and the reference of its output */
  char (*refs)[16];
  int nrefs;
  char out_ref[16];
} imp_t;

static int add_src(imp_t *x, bool state, const char *group, const char *sub, dt_error_t *err) {
  src_t **v = state ? &x->s : &x->p;
  int *n = state ? &x->ns : &x->np, *cap = state ? &x->scap : &x->pcap;
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 16;
    src_t *g = realloc(*v, (size_t)c * sizeof *g);
    if (!g) return dt_error_set(err, DT_ERR_NOMEM, "out of memory importing %s", x->what);
    *v = g, *cap = c;
  }
  src_t *e = &(*v)[(*n)++];
  if (sub)
    snprintf(e->path, sizeof e->path, "layers/%s/%s", group, sub);
  else
    e->path[0] = '\0';
  snprintf(e->label, sizeof e->label, "%s", x->label);
  return 0;
}

/* Keras' to_snake_case of a class name: "Conv2DTranspose" -> "conv2d_transpose",
 * "LeakyReLU" -> "leaky_re_lu", "SimpleRNN" -> "simple_rnn". */
static void snake(const char *cls, char *out, size_t cap) {
  /* First pass: "(.)([A-Z][a-z]+)" -> "\1_\2". */
  char a[128];
  size_t n = 0, len = strlen(cls);
  for (size_t i = 0; i < len && n + 2 < sizeof a; i++) {
    if (i > 0 && cls[i] >= 'A' && cls[i] <= 'Z' && i + 1 < len && cls[i + 1] >= 'a' &&
        cls[i + 1] <= 'z')
      a[n++] = '_';
    a[n++] = cls[i];
  }
  a[n] = '\0';
  /* Second pass: "([a-z])([A-Z])" -> "\1_\2", then lower case. */
  size_t m = 0;
  for (size_t i = 0; i < n && m + 2 < cap; i++) {
    if (i > 0 && a[i] >= 'A' && a[i] <= 'Z' && a[i - 1] >= 'a' && a[i - 1] <= 'z')
      out[m++] = '_';
    char c = a[i];
    out[m++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  out[m] = '\0';
}

/* The weight group of the next layer of class cls (counting as Keras does). */
static int group_name(imp_t *x, const char *cls, char *out, size_t cap, dt_error_t *err) {
  char s[64];
  snake(cls, s, sizeof s);
  for (int i = 0; i < x->nnames; i++)
    if (!strcmp(x->names[i], s)) {
      snprintf(out, cap, "%s_%d", s, x->counts[i]++);
      return 0;
    }
  char (*nn)[64] = realloc(x->names, (size_t)(x->nnames + 1) * sizeof *nn);
  if (nn) x->names = nn;
  int *nc = realloc(x->counts, (size_t)(x->nnames + 1) * sizeof *nc);
  if (nc) x->counts = nc;
  if (!nn || !nc) return dt_error_set(err, DT_ERR_NOMEM, "out of memory importing %s", x->what);
  snprintf(x->names[x->nnames], 64, "%s", s);
  x->counts[x->nnames++] = 1;
  snprintf(out, cap, "%s", s);
  return 0;
}

/* ---- reading a layer's config ---- */

static int bad(imp_t *x, dt_error_t *err, const char *fmt, const char *a, const char *b) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, a, b);
  return dt_error_set(err, DT_ERR_CONFIG, "%s: %s: %s", x->what, x->label, msg);
}

static const char *str(const dt_json_t *c, const char *key) {
  const dt_json_t *v = dt_json_get_typed(c, key, DT_JSON_STRING);
  return v ? v->string : NULL;
}

static bool boolean(const dt_json_t *c, const char *key, bool def) {
  const dt_json_t *v = dt_json_get_typed(c, key, DT_JSON_BOOL);
  return v ? v->boolean : def;
}

static double number(const dt_json_t *c, const char *key, double def) {
  const dt_json_t *v = dt_json_get_typed(c, key, DT_JSON_NUMBER);
  return v ? v->number : def;
}

/* A JSON number as an int, clamped (a cast of a huge double is undefined). */
static int to_int(double v) {
  if (!(v > -(1 << 30))) return -(1 << 30);
  if (v > (1 << 30)) return 1 << 30;
  return (int)v;
}

/* An int or a list of ints into out (at most max); returns the count, 0 if absent,
 * -1 if malformed. */
static int ints(const dt_json_t *c, const char *key, int *out, int max) {
  const dt_json_t *v = key ? dt_json_get(c, key) : c;
  if (!v || v->type == DT_JSON_NULL) return 0;
  if (v->type == DT_JSON_NUMBER) {
    out[0] = to_int(v->number);
    return 1;
  }
  if (v->type != DT_JSON_ARRAY || v->count > max) return -1;
  int n = 0;
  for (const dt_json_t *e = v->child; e; e = e->next) {
    if (e->type != DT_JSON_NUMBER) return -1;
    out[n++] = to_int(e->number);
  }
  return n;
}

/* Options whose non-default values change what the layer computes and that dtrain
 * lacks: each must be absent, null, or the given value. */
static int require(imp_t *x, const dt_json_t *c, const char *key, const char *want,
                   dt_error_t *err) {
  const dt_json_t *v = dt_json_get(c, key);
  if (!v || v->type == DT_JSON_NULL) return 0;
  char got[64];
  if (v->type == DT_JSON_STRING)
    snprintf(got, sizeof got, "%s", v->string);
  else if (v->type == DT_JSON_BOOL)
    snprintf(got, sizeof got, "%s", v->boolean ? "true" : "false");
  else if (v->type == DT_JSON_NUMBER)
    snprintf(got, sizeof got, "%g", v->number);
  else
    snprintf(got, sizeof got, "(a %s)", v->type == DT_JSON_ARRAY ? "list" : "dict");
  if (strcmp(got, want) == 0) return 0;
  char what[160];
  snprintf(what, sizeof what, "%s = %s", key, got);
  return bad(x, err, "%s is not supported by dtrain (only %s)", what, want);
}

/* An activation as a name: a string, or a serialized function {"config": "relu"}. */
static const char *activation_name(const dt_json_t *c) {
  const dt_json_t *v = dt_json_get(c, "activation");
  if (!v) return "linear";
  if (v->type == DT_JSON_STRING) return v->string;
  if (v->type == DT_JSON_OBJECT) {
    const char *s = str(v, "config");
    if (s) return s;
    s = str(v, "class_name");
    if (s) return s;
  }
  return "?";
}

/* The shortest of 15 or 17 digits that reads back as v (0.1, not 0.10000000000000001). */
static const char *num(double v, char buf[40]) {
  snprintf(buf, 40, "%.15g", v);
  if (strtod(buf, NULL) != v) snprintf(buf, 40, "%.17g", v);
  return buf;
}

/* s for a comment line of the config: at most cap - 1 bytes, control characters (a
 * newline would end the comment and let a name from the file add config lines) as '?'. */
static const char *comment_safe(const char *s, char *buf, size_t cap) {
  size_t n = 0;
  for (; s[n] && n + 1 < cap; n++) buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
  buf[n] = '\0';
  return buf;
}

static void section(imp_t *x, const char *type, const char *kname, const char *cls) {
  char a[96], b[96];
  x->nsec++;
  dt_text_printf(&x->ini, "\n# Keras layer '%s' (%s)\n[layer.%d]\ntype = %s\n",
                 comment_safe(kname, a, sizeof a), comment_safe(cls, b, sizeof b), x->nsec, type);
  if (x->functional) dt_text_printf(&x->ini, "name = s%d\n%s", x->nsec, x->inputs_line);
}

/* activation = ... of a Dense or convolution (or an Activation layer's own). */
static int activation_key(imp_t *x, const char *act, bool own_layer, const char *kname,
                          const char *cls, dt_error_t *err) {
  static const char *const ok[] = {"relu", "sigmoid", "tanh", "softmax", NULL};
  if (!strcmp(act, "linear")) return 0;
  for (int i = 0; ok[i]; i++)
    if (!strcmp(act, ok[i])) {
      if (own_layer)
        section(x, act, kname, cls);
      else
        dt_text_printf(&x->ini, "activation = %s\n", act);
      x->last_activation = ok[i];
      return 0;
    }
  if (!strcmp(act, "leaky_relu")) {
    /* keras.activations.leaky_relu's slope is 0.2. */
    if (own_layer) section(x, "leaky_relu", kname, cls);
    else dt_text_printf(&x->ini, "activation = leaky_relu\n");
    dt_text_printf(&x->ini, "alpha = 0.2\n");
    return 0;
  }
  return bad(x, err, "activation '%s' is not one dtrain has (%s)", act,
             "linear, relu, sigmoid, tanh, softmax, leaky_relu");
}

static void list_key(imp_t *x, const char *key, const int *v, int n) {
  dt_text_printf(&x->ini, "%s = ", key);
  for (int i = 0; i < n; i++) dt_text_printf(&x->ini, "%s%d", i ? "," : "", v[i]);
  dt_text_printf(&x->ini, "\n");
}

/* The per-sample input shape a layer was built for (its build_config), or 0 axes. */
static int built_input(const dt_json_t *layer, int *dims) {
  const dt_json_t *b = dt_json_get_typed(layer, "build_config", DT_JSON_OBJECT);
  int v[8];
  int n = b ? ints(b, "input_shape", v + 0, 8) : 0;
  /* The batch axis is null, which ints() cannot hold: count the array itself. */
  const dt_json_t *a = b ? dt_json_get_typed(b, "input_shape", DT_JSON_ARRAY) : NULL;
  if (!a || a->count < 2 || a->count > 5) return 0;
  n = 0;
  for (const dt_json_t *e = a->child->next; e; e = e->next) {
    if (e->type != DT_JSON_NUMBER) return 0;
    dims[n++] = to_int(e->number);
  }
  return n;
}

static int rnn_common(imp_t *x, const dt_json_t *c, const char *cls, bool in_bidirectional,
                      dt_error_t *err) {
  int rc;
  const char *act = activation_name(c);
  if (strcmp(act, "tanh") != 0) return bad(x, err, "activation '%s' is not supported (%s)", act,
                                           "dtrain's recurrent layers use tanh");
  if (strcmp(cls, "SimpleRNN") != 0) {
    const dt_json_t *ra = dt_json_get(c, "recurrent_activation");
    if (ra && !(ra->type == DT_JSON_STRING && !strcmp(ra->string, "sigmoid")))
      return bad(x, err, "recurrent_activation '%s' is not supported (%s)",
                 ra->type == DT_JSON_STRING ? ra->string : "?", "dtrain's gates use sigmoid");
  }
  if ((rc = require(x, c, "return_state", "false", err)) ||
      (rc = require(x, c, "stateful", "false", err)) ||
      (rc = require(x, c, "dropout", "0", err)) ||
      (rc = require(x, c, "recurrent_dropout", "0", err)) ||
      (!in_bidirectional && (rc = require(x, c, "go_backwards", "false", err))))
    return rc;
  if (!strcmp(cls, "GRU") && (rc = require(x, c, "reset_after", "true", err))) return rc;
  const dt_json_t *u = dt_json_get_typed(c, "units", DT_JSON_NUMBER);
  if (!u) return bad(x, err, "%s%s", "no 'units'", "");
  dt_text_printf(&x->ini, "units = %d\nreturn_sequences = %s\n", to_int(u->number),
                 boolean(c, "return_sequences", false) ? "true" : "false");
  return 0;
}

static const char *rnn_type(const char *cls) {
  if (!strcmp(cls, "SimpleRNN")) return "simple_rnn";
  if (!strcmp(cls, "LSTM")) return "lstm";
  if (!strcmp(cls, "GRU")) return "gru";
  return NULL;
}

/* One Keras layer (its JSON object) into the config and the weight sources. */
static int import_layer(imp_t *x, const dt_json_t *layer, dt_error_t *err) {
  const char *cls = str(layer, "class_name");
  const dt_json_t *c = dt_json_get_typed(layer, "config", DT_JSON_OBJECT);
  if (!cls || !c)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: a layer without class_name or config",
                        x->what);
  const char *kname = str(c, "name");
  if (!kname) kname = "?";
  snprintf(x->label, sizeof x->label, "layer '%.60s' (%.60s)", kname, cls);
  char group[96], nb[40];
  int rc, v[4], n;
  if ((rc = group_name(x, cls, group, sizeof group, err))) return rc;
  if (strcmp(cls, "InputLayer") != 0 && (rc = require(x, c, "data_format", "channels_last", err)))
    return rc;

  if (!strcmp(cls, "InputLayer")) {
    return 0; /* read by the caller */
  } else if (!strcmp(cls, "Dense")) {
    int in[4], nin = built_input(layer, in);
    if (nin > 2)
      return bad(x, err, "a Dense on %s-d inputs is not supported (%s)", nin == 3 ? "3" : "4+",
                 "dtrain's dense takes vectors or (T, F) sequences");
    const dt_json_t *u = dt_json_get_typed(c, "units", DT_JSON_NUMBER);
    if (!u) return bad(x, err, "%s%s", "no 'units'", "");
    section(x, "dense", kname, cls);
    dt_text_printf(&x->ini, "units = %d\n", to_int(u->number));
    if (nin == 2) dt_text_printf(&x->ini, "time_distributed = true\n");
    x->last_activation = NULL;
    if ((rc = activation_key(x, activation_name(c), false, kname, cls, err))) return rc;
    if ((rc = add_src(x, false, group, "vars/0", err))) return rc;
    return add_src(x, false, group, boolean(c, "use_bias", true) ? "vars/1" : NULL, err);
  } else if (!strcmp(cls, "Conv1D") || !strcmp(cls, "Conv2D") || !strcmp(cls, "Conv2DTranspose")) {
    int dims = cls[4] == '1' ? 1 : 2;
    const char *type = dims == 1 ? "conv1d" : cls[6] ? "conv2d_transpose" : "conv2d";
    if ((rc = require(x, c, "groups", "1", err)) ||
        (rc = require(x, c, "output_padding", "null", err)))
      return rc;
    const dt_json_t *f = dt_json_get_typed(c, "filters", DT_JSON_NUMBER);
    const char *pad = str(c, "padding");
    if (!f) return bad(x, err, "%s%s", "no 'filters'", "");
    section(x, type, kname, cls);
    dt_text_printf(&x->ini, "filters = %d\n", to_int(f->number));
    static const char *const keys[] = {"kernel_size", "strides", "dilation_rate"};
    for (int k = 0; k < 3; k++) {
      if ((n = ints(c, keys[k], v, dims)) < 0)
        return bad(x, err, "'%s' is not a list of %s integers", keys[k], dims == 1 ? "1" : "2");
      if (n) list_key(x, keys[k], v, n);
    }
    if (pad && strcmp(pad, "valid") && strcmp(pad, "same") && strcmp(pad, "causal"))
      return bad(x, err, "padding '%.40s' is not %s", pad, "valid, same or causal");
    if (pad) dt_text_printf(&x->ini, "padding = %s\n", pad);
    bool bias = boolean(c, "use_bias", true);
    if (!bias) dt_text_printf(&x->ini, "use_bias = false\n");
    x->last_activation = NULL;
    if ((rc = activation_key(x, activation_name(c), false, kname, cls, err))) return rc;
    if ((rc = add_src(x, false, group, "vars/0", err))) return rc;
    return bias ? add_src(x, false, group, "vars/1", err) : 0;
  } else if (!strcmp(cls, "MaxPooling2D") || !strcmp(cls, "AveragePooling2D")) {
    section(x, cls[0] == 'M' ? "max_pool2d" : "avg_pool2d", kname, cls);
    if ((n = ints(c, "pool_size", v, 2)) < 0) return bad(x, err, "bad '%s'%s", "pool_size", "");
    if (n) list_key(x, "pool_size", v, n);
    if ((n = ints(c, "strides", v, 2)) < 0) return bad(x, err, "bad '%s'%s", "strides", "");
    if (n) list_key(x, "strides", v, n);
    const char *pad = str(c, "padding");
    if (pad && strcmp(pad, "valid") && strcmp(pad, "same"))
      return bad(x, err, "padding '%.40s' is not %s", pad, "valid or same");
    if (pad) dt_text_printf(&x->ini, "padding = %s\n", pad);
  } else if (!strncmp(cls, "GlobalAveragePooling", 20) || !strncmp(cls, "GlobalMaxPooling", 16)) {
    if ((rc = require(x, c, "keepdims", "false", err))) return rc;
    const char *d = cls + strlen(cls) - 2;
    if (strcmp(d, "1D") != 0 && strcmp(d, "2D") != 0) return bad(x, err, "%s%s", "3-d pooling is not supported", "");
    section(x, cls[6] == 'A' ? "global_avg_pool" : "global_max_pool", kname, cls);
  } else if (!strcmp(cls, "Flatten")) {
    section(x, "flatten", kname, cls);
  } else if (!strcmp(cls, "Reshape")) {
    if ((n = ints(c, "target_shape", v, 3)) <= 0)
      return bad(x, err, "'%s' is not a list of 1 to 3 integers%s", "target_shape", "");
    for (int i = 0; i < n; i++)
      if (v[i] < 1) return bad(x, err, "target_shape with %s%s", "-1 is not supported", "");
    section(x, "reshape", kname, cls);
    list_key(x, "target_shape", v, n);
  } else if (!strcmp(cls, "BatchNormalization")) {
    const dt_json_t *ax = dt_json_get(c, "axis");
    int in[4], nin = built_input(layer, in);
    bool last = !ax || (ax->type == DT_JSON_NUMBER && (ax->number == -1 || (nin && ax->number == nin))) ||
                (ax->type == DT_JSON_ARRAY && ax->count == 1 && ax->child->type == DT_JSON_NUMBER &&
                 (ax->child->number == -1 || (nin && ax->child->number == nin)));
    if (!last) return bad(x, err, "%s%s", "only axis = -1 (the last axis) is supported", "");
    if ((rc = require(x, c, "renorm", "false", err)) ||
        (rc = require(x, c, "synchronized", "false", err)))
      return rc;
    bool center = boolean(c, "center", true), scale = boolean(c, "scale", true);
    section(x, "batch_norm", kname, cls);
    dt_text_printf(&x->ini, "momentum = %s\n", num(number(c, "momentum", 0.99), nb));
    dt_text_printf(&x->ini, "epsilon = %s\n", num(number(c, "epsilon", 1e-3), nb));
    if (!center) dt_text_printf(&x->ini, "center = false\n");
    if (!scale) dt_text_printf(&x->ini, "scale = false\n");
    /* Keras' variables: gamma, beta (those present), moving_mean, moving_variance. */
    int k = 0;
    char sub[24];
    for (int i = 0; i < (int)scale + (int)center; i++, k++) {
      snprintf(sub, sizeof sub, "vars/%d", k);
      if ((rc = add_src(x, false, group, sub, err))) return rc;
    }
    for (int i = 0; i < 2; i++, k++) {
      snprintf(sub, sizeof sub, "vars/%d", k);
      if ((rc = add_src(x, true, group, sub, err))) return rc;
    }
  } else if (!strcmp(cls, "Dropout")) {
    if ((rc = require(x, c, "noise_shape", "null", err))) return rc;
    section(x, "dropout", kname, cls);
    dt_text_printf(&x->ini, "rate = %s\n", num(number(c, "rate", 0.5), nb));
  } else if (!strcmp(cls, "Embedding")) {
    if ((rc = require(x, c, "mask_zero", "false", err))) return rc;
    const dt_json_t *a = dt_json_get_typed(c, "input_dim", DT_JSON_NUMBER),
                    *b = dt_json_get_typed(c, "output_dim", DT_JSON_NUMBER);
    if (!a || !b) return bad(x, err, "%s%s", "no input_dim or output_dim", "");
    section(x, "embedding", kname, cls);
    dt_text_printf(&x->ini, "input_dim = %d\noutput_dim = %d\n", to_int(a->number), to_int(b->number));
    return add_src(x, false, group, "vars/0", err);
  } else if (rnn_type(cls)) {
    section(x, rnn_type(cls), kname, cls);
    if ((rc = rnn_common(x, c, cls, false, err))) return rc;
    bool bias = boolean(c, "use_bias", true);
    if ((rc = add_src(x, false, group, "cell/vars/0", err)) ||
        (rc = add_src(x, false, group, "cell/vars/1", err)))
      return rc;
    return add_src(x, false, group, bias ? "cell/vars/2" : NULL, err);
  } else if (!strcmp(cls, "Bidirectional")) {
    const dt_json_t *inner = dt_json_get_typed(c, "layer", DT_JSON_OBJECT);
    const dt_json_t *ic = inner ? dt_json_get_typed(inner, "config", DT_JSON_OBJECT) : NULL;
    const char *icls = inner ? str(inner, "class_name") : NULL;
    if (!ic || !icls || !rnn_type(icls))
      return bad(x, err, "the wrapped layer '%s' is not %s", icls ? icls : "?",
                 "SimpleRNN, LSTM or GRU");
    const char *merge = str(c, "merge_mode");
    if (!merge || (strcmp(merge, "concat") && strcmp(merge, "sum")))
      return bad(x, err, "merge_mode '%s' is not supported (%s)", merge ? merge : "null",
                 "concat or sum");
    const dt_json_t *bl = dt_json_get_typed(c, "backward_layer", DT_JSON_OBJECT);
    const dt_json_t *bc = bl ? dt_json_get_typed(bl, "config", DT_JSON_OBJECT) : NULL;
    section(x, "bidirectional", kname, cls);
    dt_text_printf(&x->ini, "layer = %s\nmerge_mode = %s\n", rnn_type(icls), merge);
    if ((rc = rnn_common(x, ic, icls, true, err))) return rc;
    if (bc && (boolean(bc, "return_sequences", false) != boolean(ic, "return_sequences", false) ||
               number(bc, "units", -1) != number(ic, "units", -2) ||
               strcmp(str(bl, "class_name") ? str(bl, "class_name") : "", icls) != 0))
      return bad(x, err, "%s%s", "a backward_layer unlike the forward one is not supported", "");
    bool bias = boolean(ic, "use_bias", true);
    static const char *const subs[] = {"forward_layer/cell/vars/0", "forward_layer/cell/vars/1",
                                       "forward_layer/cell/vars/2", "backward_layer/cell/vars/0",
                                       "backward_layer/cell/vars/1", "backward_layer/cell/vars/2"};
    for (int i = 0; i < 6; i++)
      if ((rc = add_src(x, false, group, i % 3 == 2 && !bias ? NULL : subs[i], err))) return rc;
  } else if (!strcmp(cls, "Activation")) {
    return activation_key(x, activation_name(c), true, kname, cls, err);
  } else if (!strcmp(cls, "ReLU")) {
    if ((rc = require(x, c, "max_value", "null", err)) ||
        (rc = require(x, c, "negative_slope", "0", err)) ||
        (rc = require(x, c, "threshold", "0", err)))
      return rc;
    section(x, "relu", kname, cls);
    x->last_activation = "relu";
  } else if (!strcmp(cls, "LeakyReLU")) {
    section(x, "leaky_relu", kname, cls);
    double a = number(c, "negative_slope", number(c, "alpha", 0.3));
    dt_text_printf(&x->ini, "alpha = %s\n", num(a, nb));
    x->last_activation = "leaky_relu";
  } else if (!strcmp(cls, "Softmax")) {
    if ((rc = require(x, c, "axis", "-1", err))) return rc;
    section(x, "softmax", kname, cls);
    x->last_activation = "softmax";
  } else if (!strcmp(cls, "Add") || !strcmp(cls, "Subtract") || !strcmp(cls, "Multiply") ||
             !strcmp(cls, "Average") || !strcmp(cls, "Maximum")) {
    char t[16];
    snprintf(t, sizeof t, "%s", cls);
    t[0] = (char)(t[0] - 'A' + 'a');
    section(x, t, kname, cls);
  } else if (!strcmp(cls, "Concatenate")) {
    const dt_json_t *ax = dt_json_get_typed(c, "axis", DT_JSON_NUMBER);
    section(x, "concatenate", kname, cls);
    if (ax) dt_text_printf(&x->ini, "axis = %d\n", to_int(ax->number));
  } else if (!strcmp(cls, "UpSampling2D")) {
    if ((rc = require(x, c, "interpolation", "nearest", err))) return rc;
    if ((n = ints(c, "size", v, 2)) < 0) return bad(x, err, "bad '%s'%s", "size", "");
    section(x, "upsampling2d", kname, cls);
    if (n) list_key(x, "size", v, n);
  } else if (!strcmp(cls, "ZeroPadding2D")) {
    /* padding: an int, a pair (rows, columns), or ((top, bottom), (left, right)). */
    const dt_json_t *p = dt_json_get(c, "padding");
    int q[4] = {1, 1, 1, 1};
    if (p && p->type == DT_JSON_ARRAY && p->count == 2 && p->child->type == DT_JSON_ARRAY) {
      int a2[2], b2[2];
      if (ints(p->child, NULL, a2, 2) != 2 || ints(p->child->next, NULL, b2, 2) != 2)
        return bad(x, err, "bad '%s'%s", "padding", "");
      q[0] = a2[0], q[1] = a2[1], q[2] = b2[0], q[3] = b2[1];
    } else if ((n = ints(c, "padding", v, 2)) == 1) {
      q[0] = q[1] = q[2] = q[3] = v[0];
    } else if (n == 2) {
      q[0] = q[1] = v[0], q[2] = q[3] = v[1];
    } else if (n != 0) {
      return bad(x, err, "bad '%s'%s", "padding", "");
    }
    for (int i = 0; i < 4; i++)
      if (q[i] < 0) return bad(x, err, "bad '%s'%s", "padding", "");
    section(x, "zero_padding2d", kname, cls);
    dt_text_printf(&x->ini, "padding = %d,%d,%d,%d\n", q[0], q[1], q[2], q[3]);
  } else {
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: %s: dtrain has no layer for Keras class '%s' (see docs/keras.md for "
                        "the supported layers)",
                        x->what, x->label, cls);
  }
  if (strcmp(cls, "Activation") && strcmp(cls, "ReLU") && strcmp(cls, "LeakyReLU") &&
      strcmp(cls, "Softmax") && strcmp(cls, "Dropout"))
    x->last_activation = NULL;
  return 0;
}

/* The model's per-sample input shape from an InputLayer's batch_shape (or Keras 2's
 * batch_input_shape), or a model's build_input_shape / build_config. */
static int shape_from(imp_t *x, const dt_json_t *a) {
  if (!a || a->type != DT_JSON_ARRAY || a->count < 2 || a->count > 4) return -1;
  int n = 0;
  for (const dt_json_t *e = a->child->next; e; e = e->next) {
    if (e->type != DT_JSON_NUMBER || e->number < 1) return -1;
    x->input[n++] = to_int(e->number);
  }
  x->input_ndim = n;
  return 0;
}

static bool input_layer_shape(imp_t *x, const dt_json_t *layer) {
  const dt_json_t *c = dt_json_get_typed(layer, "config", DT_JSON_OBJECT);
  if (!c) return false;
  const dt_json_t *a = dt_json_get(c, "batch_shape");
  if (!a) a = dt_json_get(c, "batch_input_shape");
  return shape_from(x, a) == 0;
}

/* The reference of Keras layer `name`'s output ("input", or a section's name). */
static const char *ref_of(const imp_t *x, const char *name) {
  for (int i = x->nrefs - 1; i >= 0; i--)
    if (!strcmp(x->knames[i], name)) return x->refs[i];
  return NULL;
}

static int add_ref(imp_t *x, const char *name, const char *ref, dt_error_t *err) {
  char (*k)[64] = realloc(x->knames, (size_t)(x->nrefs + 1) * sizeof *k);
  if (k) x->knames = k;
  char (*r)[16] = realloc(x->refs, (size_t)(x->nrefs + 1) * sizeof *r);
  if (r) x->refs = r;
  if (!k || !r) return dt_error_set(err, DT_ERR_NOMEM, "out of memory importing %s", x->what);
  snprintf(x->knames[x->nrefs], 64, "%s", name);
  snprintf(x->refs[x->nrefs++], 16, "%s", ref);
  return 0;
}

/* The Keras layer a tensor of inbound_nodes comes from (node and tensor 0 only). */
static const char *tensor_source(const dt_json_t *t) {
  const dt_json_t *tc = t && t->type == DT_JSON_OBJECT ? dt_json_get_typed(t, "config", DT_JSON_OBJECT)
                                                        : NULL;
  const dt_json_t *h = tc ? dt_json_get_typed(tc, "keras_history", DT_JSON_ARRAY) : NULL;
  if (!h || h->count != 3 || h->child->type != DT_JSON_STRING) return NULL;
  const dt_json_t *node = h->child->next;
  if (node->type != DT_JSON_NUMBER || node->number != 0 || node->next->type != DT_JSON_NUMBER ||
      node->next->number != 0)
    return NULL;
  return h->child->string;
}

/* A Functional layer's inputs: x->inputs_line, and *first the first one's reference. */
static int graph_inputs(imp_t *x, const dt_json_t *l, const char *name, const char *cls,
                        const char **first, dt_error_t *err) {
  const dt_json_t *in = dt_json_get_typed(l, "inbound_nodes", DT_JSON_ARRAY);
  const dt_json_t *node = in && in->count == 1 ? in->child : NULL;
  const dt_json_t *args = node ? dt_json_get_typed(node, "args", DT_JSON_ARRAY) : NULL;
  const dt_json_t *a0 = args && args->count >= 1 ? args->child : NULL;
  if (!a0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: layer '%s' (%s) is not called once on Keras 3 tensors (a shared "
                        "layer, or a Keras 2 file): dtrain cannot import it",
                        x->what, name, cls);
  const dt_json_t *list = a0->type == DT_JSON_ARRAY ? a0->child : a0;
  size_t o = (size_t)snprintf(x->inputs_line, sizeof x->inputs_line, "inputs = ");
  int n = 0;
  *first = NULL;
  for (const dt_json_t *t = list; t; t = a0->type == DT_JSON_ARRAY ? t->next : NULL, n++) {
    const char *src = tensor_source(t);
    const char *ref = src ? ref_of(x, src) : NULL;
    if (!ref)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: layer '%s' (%s): an input that is not the first output of an "
                          "earlier layer ('%.60s')",
                          x->what, name, cls, src ? src : "?");
    if (n >= 8)
      return dt_error_set(err, DT_ERR_CONFIG, "%s: layer '%s' (%s): more than 8 inputs", x->what,
                          name, cls);
    if (!*first) *first = ref;
    o += (size_t)snprintf(x->inputs_line + o, sizeof x->inputs_line - o, "%s%s", n ? ", " : "",
                          ref);
  }
  snprintf(x->inputs_line + o, sizeof x->inputs_line - o, "\n");
  if (!*first)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: layer '%s' (%s) has no inputs", x->what, name,
                        cls);
  return 0;
}

/* A Functional model's layers: each with its inputs; the output's reference. */
static int import_graph(imp_t *x, const dt_json_t *mc, const dt_json_t *layers,
                        dt_error_t *err) {
  int rc, inputs = 0;
  for (const dt_json_t *l = layers->child; l; l = l->next) {
    const char *cls = str(l, "class_name");
    const dt_json_t *c = dt_json_get_typed(l, "config", DT_JSON_OBJECT);
    const char *name = str(l, "name");
    if (!name && c) name = str(c, "name");
    if (!name || !cls)
      return dt_error_set(err, DT_ERR_FORMAT, "%s: a layer without class_name or name", x->what);
    if (!strcmp(cls, "InputLayer")) {
      if (++inputs > 1)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: the model has several inputs; dtrain imports one-input models",
                            x->what);
      if (!input_layer_shape(x, l))
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: the InputLayer's batch_shape is not (None, d1[, d2[, d3]]) "
                            "with known sizes",
                            x->what);
      if ((rc = import_layer(x, l, err)) || (rc = add_ref(x, name, "input", err))) return rc;
      continue;
    }
    const char *first = NULL;
    if ((rc = graph_inputs(x, l, name, cls, &first, err))) return rc;
    int before = x->nsec;
    char ref[16];
    snprintf(ref, sizeof ref, "%s", first);
    if ((rc = import_layer(x, l, err))) return rc;
    if (x->nsec != before) snprintf(ref, sizeof ref, "s%d", x->nsec);
    if ((rc = add_ref(x, name, ref, err))) return rc;
  }
  /* output_layers: [name, 0, 0] or [[name, 0, 0]]. */
  const dt_json_t *out = dt_json_get_typed(mc, "output_layers", DT_JSON_ARRAY);
  if (out && out->count == 1 && out->child->type == DT_JSON_ARRAY) out = out->child;
  const char *oname = out && out->count == 3 && out->child->type == DT_JSON_STRING
                          ? out->child->string
                          : NULL;
  const char *oref = oname ? ref_of(x, oname) : NULL;
  if (!oref || !strcmp(oref, "input"))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: the model's output_layers is not one layer's output (dtrain "
                        "imports one-output models)",
                        x->what);
  snprintf(x->out_ref, sizeof x->out_ref, "%s", oref);
  return 0;
}

/* The loss a model of this kind trains with: the compiled one if it is dtrain's,
 * else by the last activation. */
static const char *choose_loss(imp_t *x, const dt_json_t *root) {
  const dt_json_t *cc = dt_json_get_typed(root, "compile_config", DT_JSON_OBJECT);
  const dt_json_t *cfg = cc ? dt_json_get_typed(cc, "config", DT_JSON_OBJECT) : NULL;
  const char *loss = cfg ? str(cfg, "loss") : cc ? str(cc, "loss") : NULL;
  if (loss) {
    if (!strcmp(loss, "sparse_categorical_crossentropy") || !strcmp(loss, "binary_crossentropy") ||
        !strcmp(loss, "mse") || !strcmp(loss, "mae"))
      return loss;
    if (!strcmp(loss, "mean_squared_error")) return "mse";
    if (!strcmp(loss, "mean_absolute_error")) return "mae";
  }
  if (x->last_activation && !strcmp(x->last_activation, "softmax"))
    return "sparse_categorical_crossentropy";
  if (x->last_activation && !strcmp(x->last_activation, "sigmoid")) return "binary_crossentropy";
  return "mse";
}

static int build_config(imp_t *x, const dt_json_t *root, const char **loss, dt_error_t *err) {
  const char *cls = str(root, "class_name");
  const dt_json_t *mc = dt_json_get_typed(root, "config", DT_JSON_OBJECT);
  const dt_json_t *layers = mc ? dt_json_get_typed(mc, "layers", DT_JSON_ARRAY) : NULL;
  if (!cls || !layers)
    return dt_error_set(err, DT_ERR_FORMAT,
                        "%s: not a Keras model (no class_name and config.layers at the top)",
                        x->what);
  bool functional = !strcmp(cls, "Functional") || !strcmp(cls, "Model");
  if (!functional && strcmp(cls, "Sequential") != 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: a model of class '%s': dtrain imports Sequential and Functional "
                        "models",
                        x->what, cls);
  int rc;
  x->input_ndim = 0;
  x->functional = functional;
  if (functional && (rc = import_graph(x, mc, layers, err))) return rc;
  for (const dt_json_t *l = functional ? NULL : layers->child; l; l = l->next) {
    const char *lc = str(l, "class_name");
    if (lc && !strcmp(lc, "InputLayer")) {
      if (!input_layer_shape(x, l))
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: the InputLayer's batch_shape is not (None, d1[, d2[, d3]]) "
                            "with known sizes",
                            x->what);
      /* A Sequential's InputLayer has no weight group; a Functional's has. */
      if (!functional) continue;
    }
    if ((rc = import_layer(x, l, err))) return rc;
  }
  if (!x->input_ndim && shape_from(x, dt_json_get(mc, "build_input_shape")) != 0) {
    const dt_json_t *bc = dt_json_get_typed(root, "build_config", DT_JSON_OBJECT);
    if (!bc || shape_from(x, dt_json_get(bc, "input_shape")) != 0)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: the model's input shape is not known (no InputLayer and no "
                          "build_input_shape)",
                          x->what);
  }
  if (!x->nsec) return dt_error_set(err, DT_ERR_CONFIG, "%s: the model has no layers", x->what);
  *loss = choose_loss(x, root);
  return 0;
}

/* The config text: [model] then the layers. */
static char *config_text(imp_t *x, const char *loss) {
  dt_text_t t = {0};
  char w[256];
  dt_text_printf(&t, "# A Keras model imported by dtrain-worker import --keras from %s.\n"
                     "# Combine with [data] and [train] sections to train it (docs/keras.md).\n"
                     "[model]\ninput = ", comment_safe(x->what, w, sizeof w));
  for (int i = 0; i < x->input_ndim; i++) dt_text_printf(&t, "%s%d", i ? "," : "", x->input[i]);
  dt_text_printf(&t, "\nloss = %s\n", loss);
  if (x->functional) dt_text_printf(&t, "outputs = %s\n", x->out_ref);
  dt_text_printf(&t, "%s", x->ini.buf ? x->ini.buf : "");
  if (t.failed) {
    free(t.buf);
    return NULL;
  }
  return t.buf;
}

int dt_keras_map_config(const dt_json_t *root, const char *what, dt_keras_map_t *out,
                        dt_error_t *err) {
  memset(out, 0, sizeof *out);
  imp_t x = {0};
  x.what = what;
  const char *loss = "mse";
  int rc = 0;
  if (root->type != DT_JSON_OBJECT)
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s: not a Keras model (not a JSON object)", what);
  if (!rc) rc = build_config(&x, root, &loss, err);
  if (!rc && (x.ini.failed || !(out->ini = config_text(&x, loss))))
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory importing %s", what);
  free(x.ini.buf);
  free(x.names);
  free(x.counts);
  free(x.knames);
  free(x.refs);
  if (rc) {
    free(x.p);
    free(x.s);
    return rc;
  }
  memcpy(out->input, x.input, sizeof out->input);
  out->input_ndim = x.input_ndim;
  out->params = x.p, out->nparams = x.np;
  out->states = x.s, out->nstates = x.ns;
  return 0;
}

void dt_keras_map_free(dt_keras_map_t *m) {
  free(m->ini);
  free(m->params);
  free(m->states);
  memset(m, 0, sizeof *m);
}
