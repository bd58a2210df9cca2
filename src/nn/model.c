/* Building a sequential model from its config, placing its parameters in the flat
 * buffers on the device, and running forward and backward over the layer stack on the
 * device's stream. */
#include "dtrain/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Activations and scratch start on 64-byte boundaries (the device's allocations are
 * aligned so), so that vector loads on them are whole lines. */
enum { ARENA_ALIGN_FLOATS = 16 };

static size_t round_up(size_t n) {
  return (n + ARENA_ALIGN_FLOATS - 1) / ARENA_ALIGN_FLOATS * ARENA_ALIGN_FLOATS;
}

/* Layer types that `activation = ...` may name. */
static const char *const activation_layers[] = {"relu", "leaky_relu", "sigmoid", "tanh", "softmax",
                                                NULL};

static int add_layer(dt_model_t *m, dt_config_t *cfg, const char *section, const char *type,
                     dt_shape_t in, dt_error_t *err) {
  const dt_layer_ops_t *ops = dt_layer_find(type);
  if (!ops) {
    char list[512];
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] unknown layer type '%s' (known: %s)",
                        dt_config_where(cfg, section, "type"), section, type,
                        dt_layer_type_list(list, sizeof list));
  }
  if (m->nlayers >= DT_MAX_LAYERS)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: more than %d layers",
                        dt_config_where(cfg, section, NULL), DT_MAX_LAYERS);
  dt_layer_t *l = &m->layers[m->nlayers];
  memset(l, 0, sizeof *l);
  l->ops = ops;
  l->section = section;
  l->in_shape = in;
  /* Keras-style names: dense_1, dense_2, relu_1... */
  int idx = 0;
  for (int i = 0; i < m->nlayers; i++) idx += m->layers[i].ops == ops;
  snprintf(l->name, sizeof l->name, "%s_%d", ops->type, idx + 1);
  /* Build errors already name their location (the getters and layers add it). */
  int rc = ops->build(l, cfg, section, err);
  if (rc) return rc;
  m->nlayers++;
  return 0;
}

/* Cross-entropy over classes needs a flat vector of logits; the element-wise losses
 * (BCE, MSE, MAE) take outputs of any shape, e.g. one per time step. */
static int check_loss_fits(dt_model_t *m, dt_config_t *cfg, dt_error_t *err) {
  if (m->out_shape.ndim != 1 && m->loss == DT_LOSS_SOFTMAX_CE) {
    char s[64];
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the last layer's output %s must be a flat vector for loss '%s'",
                        dt_config_where(cfg, "model", "loss"),
                        dt_shape_str(&m->out_shape, s, sizeof s), dt_loss_names[m->loss]);
  }
  if (m->loss == DT_LOSS_SOFTMAX_CE && m->out_shape.dims[0] < 2)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: cross-entropy over classes needs at least 2 outputs, the last "
                        "layer has %d",
                        dt_config_where(cfg, "model", "loss"), m->out_shape.dims[0]);
  return 0;
}

/* A zeroed buffer of n floats (at least one) on the model's device. */
static int alloc_zeroed(dt_model_t *m, size_t n, float **p, const char *what, dt_error_t *err) {
  int rc = dt_device_alloc(m->dev, (n ? n : 1) * sizeof(float), (void **)p, err);
  if (rc) return dt_error_prefix(err, "%s (%zu values): ", what, n);
  dt_device_fill(m->stream, *p, n, 0.0f);
  return 0;
}

int dt_model_build(dt_model_t *m, dt_device_t *dev, dt_config_t *cfg, dt_shape_t in_shape,
                   dt_error_t *err) {
  memset(m, 0, sizeof *m);
  m->dev = dev;
  m->stream = dev->stream;
  int loss, rc, nsections;
  if ((rc = dt_config_get_choice(cfg, "model", "loss", "sparse_categorical_crossentropy",
                                 dt_loss_names, &loss, err)))
    return rc;
  m->loss = (dt_loss_kind)loss;
  m->in_shape = in_shape;

  const char *sections[DT_MAX_LAYERS];
  if ((rc = dt_config_numbered_sections(cfg, "layer.", sections, DT_MAX_LAYERS, &nsections, err)))
    return rc;
  if (nsections == 0)
    return dt_error_set(err, DT_ERR_CONFIG, "the config has no [layer.1], [layer.2], ... sections");
  if (nsections > DT_MAX_LAYERS / 2)
    return dt_error_set(err, DT_ERR_CONFIG, "too many layer sections (%d, at most %d)", nsections,
                        DT_MAX_LAYERS / 2);
  if (!(m->layers = calloc(DT_MAX_LAYERS, sizeof *m->layers)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");

  dt_shape_t shape = in_shape;
  for (int s = 0; s < nsections; s++) {
    const char *type, *activation;
    if (!dt_config_has_key(cfg, sections[s], "type"))
      return dt_error_set(err, DT_ERR_CONFIG, "%s: the layer has no 'type'",
                          dt_config_where(cfg, sections[s], NULL));
    if ((rc = dt_config_get_string(cfg, sections[s], "type", "", &type, err)) ||
        (rc = add_layer(m, cfg, sections[s], type, shape, err)))
      return rc;
    shape = m->layers[m->nlayers - 1].out_shape;
    if ((rc = dt_config_get_string(cfg, sections[s], "activation", "", &activation, err)))
      return rc;
    if (activation[0] && strcmp(activation, "linear") != 0) {
      bool known = false;
      for (int a = 0; activation_layers[a]; a++) known |= strcmp(activation, activation_layers[a]) == 0;
      if (!known)
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [%s] activation = '%s': expected one of linear, relu, "
                            "leaky_relu, sigmoid, tanh, softmax",
                            dt_config_where(cfg, sections[s], "activation"), sections[s],
                            activation);
      if ((rc = add_layer(m, cfg, sections[s], activation, shape, err))) return rc;
      shape = m->layers[m->nlayers - 1].out_shape;
    }
  }

  /* A final softmax (or sigmoid) before a cross-entropy is folded into the loss. */
  m->nrun = m->nlayers;
  const char *last = m->layers[m->nlayers - 1].ops->type;
  if ((m->loss == DT_LOSS_SOFTMAX_CE && strcmp(last, "softmax") == 0) ||
      (m->loss == DT_LOSS_BCE_LOGITS && strcmp(last, "sigmoid") == 0))
    m->nrun = m->nlayers - 1;
  m->out_shape = m->nrun > 0 ? m->layers[m->nrun - 1].out_shape : in_shape;
  if ((rc = check_loss_fits(m, cfg, err))) return rc;

  /* Place every parameter tensor in the flat buffers, in layer order. */
  int total = 0;
  for (int i = 0; i < m->nlayers; i++) total += m->layers[i].nparams;
  m->params = calloc(total ? (size_t)total : 1, sizeof *m->params);
  if (!m->params) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  size_t offset = 0;
  for (int i = 0; i < m->nlayers; i++) {
    dt_layer_t *l = &m->layers[i];
    for (int p = 0; p < l->nparams; p++) {
      l->param_decl[p].offset = offset;
      offset += l->param_decl[p].count;
      m->params[m->nparams++] = l->param_decl[p];
    }
  }
  m->num_params = offset;
  /* The same for the non-trainable state tensors, in their own buffer. */
  int total_states = 0;
  for (int i = 0; i < m->nlayers; i++) total_states += m->layers[i].nstates;
  m->states = calloc(total_states ? (size_t)total_states : 1, sizeof *m->states);
  if (!m->states) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  size_t soffset = 0;
  for (int i = 0; i < m->nlayers; i++) {
    dt_layer_t *l = &m->layers[i];
    for (int p = 0; p < l->nstates; p++) {
      l->state_decl[p].offset = soffset;
      soffset += l->state_decl[p].count;
      m->states[m->nstates++] = l->state_decl[p];
    }
  }
  m->num_states = soffset;
  if ((rc = alloc_zeroed(m, soffset, &m->state_buf, "the layers' state", err))) return rc;
  for (int i = 0; i < m->nlayers; i++)
    for (int p = 0; p < m->layers[i].nstates; p++)
      m->layers[i].s[p] = m->state_buf + m->layers[i].state_decl[p].offset;
  if ((rc = alloc_zeroed(m, offset, &m->param_buf, "the parameters", err)) ||
      (rc = alloc_zeroed(m, offset, &m->grad_buf, "the gradients", err)))
    return rc;
  for (int i = 0; i < m->nlayers; i++) {
    dt_layer_t *l = &m->layers[i];
    for (int p = 0; p < l->nparams; p++) {
      l->w[p] = m->param_buf + l->param_decl[p].offset;
      l->g[p] = m->grad_buf + l->param_decl[p].offset;
    }
  }
  /* One event per layer with parameters, recorded after its backward. */
  if (!(m->grads_ready = calloc((size_t)m->nlayers, sizeof *m->grads_ready)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].nparams && (rc = dt_device_event_create(dev, &m->grads_ready[i], err)))
      return rc;
  return 0;
}

int dt_model_prepare(dt_model_t *m, int capacity, dt_error_t *err) {
  dt_device_free(m->dev, m->arena);
  free(m->acts);
  m->arena = NULL;
  m->capacity = capacity;
  if (!(m->acts = calloc((size_t)m->nlayers + 1, sizeof *m->acts)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory preparing the model");

  /* One allocation: input, every layer output, dout, two backward buffers, scratch. */
  /* The backward buffers hold dL/dx of layers 1..nrun-1, i.e. the outputs of layers
   * 0..nrun-2; the first layer's input gradient is never computed. */
  size_t cap = (size_t)capacity, max_act = 1;
  size_t total = round_up(cap * dt_shape_size(&m->in_shape));
  for (int i = 0; i < m->nlayers; i++) {
    size_t out = dt_shape_size(&m->layers[i].out_shape);
    if (i < m->nrun - 1) max_act = out > max_act ? out : max_act;
    total += round_up(cap * out);
    if (m->layers[i].ops->scratch_floats)
      total += round_up(m->layers[i].ops->scratch_floats(&m->layers[i], m->dev, capacity));
  }
  total += round_up(cap * dt_shape_size(&m->out_shape)) + 2 * round_up(cap * max_act);
  float *arena;
  int rc = dt_device_alloc(m->dev, total * sizeof(float), (void **)&arena, err);
  if (rc) return dt_error_prefix(err, "activations for a batch of %d: ", capacity);
  /* Zeroed so that a layer reading scratch before writing it is deterministic. */
  dt_device_fill(m->stream, arena, total, 0.0f);
  m->arena = arena;
  float *p = arena;
  m->acts[0] = p;
  p += round_up(cap * dt_shape_size(&m->in_shape));
  for (int i = 0; i < m->nlayers; i++) {
    m->acts[i + 1] = p;
    p += round_up(cap * dt_shape_size(&m->layers[i].out_shape));
    if (m->layers[i].ops->scratch_floats) {
      m->layers[i].scratch = p;
      p += round_up(m->layers[i].ops->scratch_floats(&m->layers[i], m->dev, capacity));
    }
  }
  m->dout = p;
  p += round_up(cap * dt_shape_size(&m->out_shape));
  m->dbuf[0] = p;
  p += round_up(cap * max_act);
  m->dbuf[1] = p;
  return 0;
}

void dt_model_free(dt_model_t *m) {
  if (m->layers)
    for (int i = 0; i < m->nlayers; i++) free(m->layers[i].priv);
  if (m->grads_ready)
    for (int i = 0; i < m->nlayers; i++) dt_device_event_destroy(m->grads_ready[i]);
  free(m->grads_ready);
  free(m->layers);
  free(m->params);
  free(m->states);
  free(m->acts);
  for (int i = 0; i < 3; i++) free(m->host[i]);
  /* A model whose build never started has no device (and nothing on one). */
  if (m->dev) {
    dt_device_free(m->dev, m->param_buf);
    dt_device_free(m->dev, m->grad_buf);
    dt_device_free(m->dev, m->state_buf);
    dt_device_free(m->dev, m->arena);
  }
  memset(m, 0, sizeof *m);
}

static void init_tensor(const dt_param_info_t *p, float *w, dt_rng_t *rng) {
  double fan_in = p->fan_in > 0 ? p->fan_in : 1, fan_avg = (p->fan_in + p->fan_out) / 2.0;
  if (fan_avg <= 0) fan_avg = 1;
  switch (p->init) {
    case DT_INIT_ZEROS:
      memset(w, 0, p->count * sizeof(float));
      return;
    case DT_INIT_ONES:
      for (size_t i = 0; i < p->count; i++) w[i] = 1.0f;
      return;
    case DT_INIT_HE_NORMAL:
    case DT_INIT_GLOROT_NORMAL: {
      float sd = (float)sqrt((p->init == DT_INIT_HE_NORMAL ? 2.0 / fan_in : 1.0 / fan_avg));
      for (size_t i = 0; i < p->count; i++) w[i] = sd * dt_rng_normal(rng);
      return;
    }
    case DT_INIT_HE_UNIFORM:
    case DT_INIT_GLOROT_UNIFORM: {
      float lim = (float)sqrt((p->init == DT_INIT_HE_UNIFORM ? 6.0 / fan_in : 3.0 / fan_avg));
      for (size_t i = 0; i < p->count; i++) w[i] = lim * (2.0f * dt_rng_uniform(rng) - 1.0f);
      return;
    }
  }
}

int dt_model_init_params(dt_model_t *m, dt_rng_t *rng, dt_error_t *err) {
  float *params = NULL, *states = NULL;
  int rc;
  if ((rc = dt_model_to_host(m, DT_MODEL_PARAMS, &params, err)) ||
      (rc = dt_model_to_host(m, DT_MODEL_STATES, &states, err)))
    return rc;
  for (int i = 0; i < m->nparams; i++)
    init_tensor(&m->params[i], params + m->params[i].offset, rng);
  for (int i = 0; i < m->nstates; i++)
    init_tensor(&m->states[i], states + m->states[i].offset, rng);
  for (int i = 0; i < m->nlayers; i++) {
    dt_layer_t *l = &m->layers[i];
    if (!l->ops->init_params) continue;
    float *w[DT_MAX_LAYER_PARAMS];
    for (int p = 0; p < l->nparams; p++) w[p] = params + l->param_decl[p].offset;
    l->ops->init_params(l, w, rng);
  }
  if ((rc = dt_model_from_host(m, DT_MODEL_PARAMS, err)) ||
      (rc = dt_model_from_host(m, DT_MODEL_STATES, err)))
    return rc;
  return 0;
}

dt_exec_ctx_t dt_model_exec_ctx(const dt_model_t *m, bool training, dt_rng_t *rng) {
  return (dt_exec_ctx_t){.dev = m->dev, .stream = m->stream, .rng = rng, .training = training};
}

const float *dt_model_forward(dt_model_t *m, int batch, bool training, dt_rng_t *rng) {
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(m, training, rng);
  m->training = training;
  for (int i = 0; i < m->nrun; i++)
    m->layers[i].ops->forward(&m->layers[i], &ctx, batch, m->acts[i], m->acts[i + 1]);
  return m->acts[m->nrun];
}

void dt_model_backward(dt_model_t *m, int batch) {
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(m, m->training, NULL);
  const float *dy = m->dout;
  for (int i = m->nrun - 1; i >= 0; i--) {
    dt_layer_t *l = &m->layers[i];
    float *dx = i > 0 ? m->dbuf[i & 1] : NULL;
    l->ops->backward(l, &ctx, batch, m->acts[i], m->acts[i + 1], dy, dx);
    if (l->nparams && m->on_grads_ready) {
      size_t begin = l->param_decl[0].offset;
      size_t end = l->param_decl[l->nparams - 1].offset + l->param_decl[l->nparams - 1].count;
      dt_device_event_record(m->grads_ready[i], m->stream);
      m->on_grads_ready(m->grads_ready_ctx, begin, end, m->grads_ready[i]);
    }
    dy = dx;
  }
}

size_t dt_model_input_size(const dt_model_t *m) { return dt_shape_size(&m->in_shape); }
size_t dt_model_output_size(const dt_model_t *m) { return dt_shape_size(&m->out_shape); }

static float *buffer(const dt_model_t *m, dt_model_buffer which) {
  return which == DT_MODEL_PARAMS ? m->param_buf
         : which == DT_MODEL_GRADS ? m->grad_buf
                                   : m->state_buf;
}

static size_t buffer_bytes(const dt_model_t *m, dt_model_buffer which) {
  return (which == DT_MODEL_STATES ? m->num_states : m->num_params) * sizeof(float);
}

int dt_model_to_host(dt_model_t *m, dt_model_buffer which, float **host, dt_error_t *err) {
  const size_t bytes = buffer_bytes(m, which);
  /* A device whose memory the host cannot address copies into a host buffer of the
   * model's, made on first use and kept. */
  if (!m->dev->host_memory && !m->host[which] && !(m->host[which] = malloc(bytes ? bytes : 1)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a host copy of %zu MB",
                        bytes >> 20);
  void *view = NULL;
  int rc = dt_device_to_host(m->stream, buffer(m, which), bytes, m->host[which], &view, err);
  *host = view;
  return rc;
}

int dt_model_from_host(dt_model_t *m, dt_model_buffer which, dt_error_t *err) {
  const void *host = m->dev->host_memory ? buffer(m, which) : m->host[which];
  if (!host)
    return dt_error_set(err, DT_ERR_STATE, "dt_model_from_host without dt_model_to_host before");
  return dt_device_from_host(m->stream, buffer(m, which), host, buffer_bytes(m, which), err);
}

/* snprintf at buf + *used that keeps counting the length once buf is full. */
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...) {
  char none[1];
  bool room = buf && *used < cap;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(room ? buf + *used : none, room ? cap - *used : sizeof none, fmt, ap);
  va_end(ap);
  *used += n > 0 ? (size_t)n : 0;
}

size_t dt_model_summary(const dt_model_t *m, char *buf, size_t cap) {
  size_t used = 0;
  char s[64];
  append(buf, cap, &used, "%-20s %-16s %12s\n", "Layer", "Output shape", "Params");
  append(buf, cap, &used, "%-20s %-16s %12s\n", "input", dt_shape_str(&m->in_shape, s, sizeof s), "");
  for (int i = 0; i < m->nlayers; i++) {
    const dt_layer_t *l = &m->layers[i];
    size_t n = 0;
    for (int p = 0; p < l->nparams; p++) n += l->param_decl[p].count;
    append(buf, cap, &used, "%-20s %-16s %12zu%s\n", l->name,
           dt_shape_str(&l->out_shape, s, sizeof s), n,
           i >= m->nrun ? "  (fused into the loss)" : "");
  }
  append(buf, cap, &used, "Total params: %zu (%.2f MB)\n", m->num_params,
         m->num_params * 4.0 / (1 << 20));
  if (m->num_states)
    append(buf, cap, &used, "Non-trainable state: %zu values\n", m->num_states);
  return used;
}
