/* Building a model (a stack or a graph) from its config, placing its parameters in the
 * flat buffers on the device, planning its activation arena, and running forward and
 * backward over the layers in topological order on the device's stream. */
#include "dtrain/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_plan.h"
#include "graph.h"

/* Activations and scratch start on 64-byte boundaries (the device's allocations are
 * aligned so), so that vector loads on them are whole lines. */
enum { ARENA_ALIGN_FLOATS = 16 };


/* Adds layer m->nlayers of type ops for section s of the graph, with inputs from the
 * layers (or the model's input) that `producers` names, and builds it. */
static int add_layer(dt_model_t *m, dt_config_t *cfg, const dt_graph_node_t *nd,
                     const dt_layer_ops_t *ops, const char *name, int ninputs,
                     const int *producers, const char *const *input_names, dt_error_t *err) {
  if (m->nlayers >= DT_MAX_LAYERS)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: more than %d layers",
                        dt_config_where(cfg, nd->section, NULL), DT_MAX_LAYERS);
  dt_layer_t *l = &m->layers[m->nlayers];
  memset(l, 0, sizeof *l);
  l->ops = ops;
  l->section = nd->section;
  snprintf(l->name, sizeof l->name, "%s", name);
  l->ninputs = ninputs;
  for (int k = 0; k < ninputs; k++) {
    l->inputs[k] = producers[k];
    l->in_shapes[k] = producers[k] < 0 ? m->in_shapes[DT_LAYER_MODEL_INPUT - producers[k]]
                                       : m->layers[producers[k]].out_shape;
    l->input_names[k] = input_names[k];
  }
  l->in_shape = l->in_shapes[0];
  /* Build errors already name their location (the getters and layers add it). */
  int rc = ops->build(l, cfg, nd->section, err);
  if (rc) return rc;
  m->nlayers++;
  return 0;
}

/* Builds the layers of the graph's sections in its topological order. */
static int build_layers(dt_model_t *m, dt_config_t *cfg, const dt_graph_t *g, dt_error_t *err) {
  int *section_out = malloc(sizeof *section_out * (size_t)g->n); /* its last layer */
  if (!section_out) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  int rc = 0;
  for (int o = 0; o < g->n && !rc; o++) {
    const int s = g->order[o];
    const dt_graph_node_t *nd = &g->nodes[s];
    int producers[DT_MAX_LAYER_INPUTS];
    const char *names[DT_MAX_LAYER_INPUTS];
    for (int k = 0; k < nd->ninputs; k++) {
      producers[k] = nd->inputs[k] < 0 ? nd->inputs[k] : section_out[nd->inputs[k]];
      names[k] = nd->input_names[k]; /* the graph lives as long as the model */
    }
    rc = add_layer(m, cfg, nd, nd->ops, nd->name, nd->ninputs, producers, names, err);
    if (!rc && nd->act_ops) {
      const int main_layer = m->nlayers - 1;
      const char *main_name = nd->name;
      rc = add_layer(m, cfg, nd, nd->act_ops, nd->act_name, 1, &main_layer, &main_name, err);
    }
    section_out[s] = m->nlayers - 1;
  }
  free(section_out);
  return rc;
}

/* Cross-entropy over classes needs a flat vector of logits; the element-wise losses
 * (BCE, MSE, MAE) take outputs of any shape, e.g. one per time step. */
static int check_loss_fits(dt_model_t *m, dt_config_t *cfg, int k, dt_error_t *err) {
  const dt_model_output_t *o = &m->outputs[k];
  const char *key = m->nout > 1 ? "losses" : "loss";
  if (o->shape.ndim != 1 && o->loss == DT_LOSS_SOFTMAX_CE) {
    char s[64];
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the %s output %s must be a flat vector for loss '%s'",
                        dt_config_where(cfg, "model", key), m->nout > 1 ? o->name : "last layer's",
                        dt_shape_str(&o->shape, s, sizeof s), dt_loss_names[o->loss]);
  }
  if (o->loss == DT_LOSS_SOFTMAX_CE && o->shape.dims[0] < 2)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: cross-entropy over classes needs at least 2 outputs, the %s has %d",
                        dt_config_where(cfg, "model", key),
                        m->nout > 1 ? o->name : "last layer", o->shape.dims[0]);
  return 0;
}

/* The index of the last layer built for section `section`. */
static int section_layer(const dt_model_t *m, const char *section) {
  int last = -1;
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].section == section) last = i;
  return last;
}

static bool consumed(const dt_model_t *m, int p) {
  for (int c = 0; c < m->nlayers; c++)
    for (int k = 0; k < m->layers[c].ninputs; k++)
      if (m->layers[c].inputs[k] == p) return true;
  return false;
}

/* [model] losses and loss_weights: one per output (defaults: [model] loss, weight 1). */
static int read_losses(dt_model_t *m, dt_config_t *cfg, dt_error_t *err) {
  int loss, rc;
  if ((rc = dt_config_get_choice(cfg, "model", "loss", "sparse_categorical_crossentropy",
                                 dt_loss_names, &loss, err)))
    return rc;
  for (int k = 0; k < m->nout; k++) {
    m->outputs[k].loss = (dt_loss_kind)loss;
    m->outputs[k].weight = 1.0f;
  }
  char names[DT_MAX_MODEL_IO][DT_NAME_MAX];
  const char *text;
  if (dt_config_has_key(cfg, "model", "losses")) {
    if ((rc = dt_config_get_string(cfg, "model", "losses", "", &text, err))) return rc;
    int n = dt_graph_split_list(text, names, DT_MAX_MODEL_IO);
    if (n != m->nout)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] losses = '%s': expected one loss per output (%d, for "
                          "[model] outputs)",
                          dt_config_where(cfg, "model", "losses"), text, m->nout);
    for (int k = 0; k < n; k++) {
      int j = 0;
      while (dt_loss_names[j] && strcmp(dt_loss_names[j], names[k]) != 0) j++;
      if (!dt_loss_names[j])
        return dt_error_set(err, DT_ERR_CONFIG, "%s: [model] losses: unknown loss '%s'",
                            dt_config_where(cfg, "model", "losses"), names[k]);
      m->outputs[k].loss = (dt_loss_kind)j;
    }
  }
  if (dt_config_has_key(cfg, "model", "loss_weights")) {
    if ((rc = dt_config_get_string(cfg, "model", "loss_weights", "", &text, err))) return rc;
    int n = dt_graph_split_list(text, names, DT_MAX_MODEL_IO);
    if (n != m->nout)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] loss_weights = '%s': expected one weight per output (%d, "
                          "for [model] outputs)",
                          dt_config_where(cfg, "model", "loss_weights"), text, m->nout);
    for (int k = 0; k < n; k++) {
      char *end;
      double w = strtod(names[k], &end);
      if (*end || !(w >= 0.0) || !isfinite(w))
        return dt_error_set(err, DT_ERR_CONFIG,
                            "%s: [model] loss_weights: '%s' is not a number >= 0",
                            dt_config_where(cfg, "model", "loss_weights"), names[k]);
      m->outputs[k].weight = (float)w;
    }
  }
  m->loss = m->outputs[0].loss;
  return 0;
}

/* The outputs: the layer whose values each loss sees, where a final softmax (or sigmoid)
 * before a cross-entropy is folded into the loss. The folded layers (nobody else reads
 * them) move to the end of layers[], after the layers forward runs (nrun): a stack's
 * folded softmax already is there, so its order stays as it was. */
static int place_outputs(dt_model_t *m, dt_config_t *cfg, dt_error_t *err) {
  const dt_graph_t *g = m->graph;
  int *pos = malloc(sizeof *pos * (size_t)m->nlayers);
  dt_layer_t *moved = malloc(sizeof *moved * (size_t)m->nlayers);
  bool fused[DT_MAX_LAYERS] = {false};
  if (!pos || !moved) {
    free(pos);
    free(moved);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  }
  int out_layer[DT_MAX_MODEL_IO], named[DT_MAX_MODEL_IO];
  for (int k = 0; k < m->nout; k++) {
    dt_model_output_t *o = &m->outputs[k];
    const int i = section_layer(m, g->nodes[g->outputs[k]].section);
    const char *type = m->layers[i].ops->type;
    out_layer[k] = named[k] = i;
    if (((o->loss == DT_LOSS_SOFTMAX_CE && strcmp(type, "softmax") == 0) ||
         (o->loss == DT_LOSS_BCE_LOGITS && strcmp(type, "sigmoid") == 0)) &&
        !consumed(m, i)) {
      fused[i] = true;
      out_layer[k] = m->layers[i].inputs[0];
    }
  }
  /* The new position of every layer: those run in order, then the folded ones. */
  int n = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < m->nlayers; i++)
      if (fused[i] == (pass == 1)) pos[i] = n++;
  m->nrun = 0;
  for (int i = 0; i < m->nlayers; i++) {
    dt_layer_t l = m->layers[i];
    for (int k = 0; k < l.ninputs; k++)
      if (l.inputs[k] >= 0) l.inputs[k] = pos[l.inputs[k]];
    moved[pos[i]] = l;
    m->nrun += !fused[i];
  }
  memcpy(m->layers, moved, sizeof *moved * (size_t)m->nlayers);
  free(moved);
  int rc = 0;
  for (int k = 0; k < m->nout && !rc; k++) {
    dt_model_output_t *o = &m->outputs[k];
    const int p = out_layer[k] >= 0 ? pos[out_layer[k]] : out_layer[k];
    o->name = m->layers[pos[named[k]]].name; /* after the move: layers[] changed places */
    o->act = dt_model_act_index(m, p);
    o->shape = p >= 0 ? m->layers[p].out_shape : m->in_shapes[DT_LAYER_MODEL_INPUT - p];
    for (int j = 0; j < k; j++)
      if (m->outputs[j].act == o->act)
        rc = dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [model] outputs: '%s' and '%s' give the loss the same values",
                          dt_config_where(cfg, "model", "outputs"), m->outputs[j].name, o->name);
    if (!rc) rc = check_loss_fits(m, cfg, k, err);
  }
  free(pos);
  m->out_shape = m->outputs[0].shape;
  return rc;
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
  return dt_model_build_multi(m, dev, cfg, &in_shape, 1, err);
}

int dt_model_build_multi(dt_model_t *m, dt_device_t *dev, dt_config_t *cfg,
                         const dt_shape_t *in_shapes, int nin, dt_error_t *err) {
  memset(m, 0, sizeof *m);
  m->dev = dev;
  m->stream = dev->stream;
  int rc, nsections;
  if (nin < 1 || nin > DT_MAX_MODEL_IO)
    return dt_error_set(err, DT_ERR_ARG, "a model takes 1 to %d inputs, not %d", DT_MAX_MODEL_IO,
                        nin);
  m->nin = nin;
  for (int j = 0; j < nin; j++) m->in_shapes[j] = in_shapes[j];
  m->in_shape = in_shapes[0];

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
  /* The graph (names, inputs, checks, order) first; the layers then in its order. */
  if (!(m->graph = calloc(1, sizeof *m->graph)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the model");
  if ((rc = dt_graph_parse(m->graph, cfg, sections, nsections, err))) return rc;
  const int want = m->graph->nin ? m->graph->nin : 1;
  if (want != nin)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: the model has %d input%s but the data gives %d: several inputs take "
                        "NumPy data with one array per input (data.train_x = x.npz:a, x.npz:b)",
                        dt_config_where(cfg, "model", "inputs"), want, want == 1 ? "" : "s", nin);
  m->nout = m->graph->noutputs;
  if ((rc = read_losses(m, cfg, err)) || (rc = build_layers(m, cfg, m->graph, err)))
    return rc;
  m->is_graph = m->graph->is_graph;
  if ((rc = place_outputs(m, cfg, err))) return rc;

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

/* Steps of a training pass, for the arena plan: forward of layer i at step i, backward
 * of layer i at step 2 nrun - 1 - i; END is after both. */
static int fwd_step(int i) { return i; }
static int bwd_step(const dt_model_t *m, int i) { return 2 * m->nrun - 1 - i; }

/* The output k whose values are acts[a], or -1. */
static int output_at(const dt_model_t *m, int a) {
  for (int k = 0; k < m->nout; k++)
    if (m->outputs[k].act == a) return k;
  return -1;
}

/* Plans the arena: buffer a (0..nacts) is acts[a] (the layers' outputs, then the model's
 * inputs after the first), buffer nacts + a the gradient of acts[a] (of the input only
 * with input_grad), then the first output's dout, one part buffer per (layer, input), one
 * scratch per layer, and the douts of the other outputs.
 * Fills *bufs (to be freed) and returns their count. */
static int plan(dt_model_t *m, int capacity, dt_arena_buf_t **out) {
  const int nl = m->nlayers, nrun = m->nrun, end = 2 * nrun, nacts = nl + m->nin;
  const int iout = 2 * nacts, ipart = iout + 1, iscratch = ipart + nl * DT_MAX_LAYER_INPUTS,
            idouts = iscratch + nl, n = idouts + m->nout - 1;
  dt_arena_buf_t *b = calloc((size_t)n, sizeof *b);
  if (!(*out = b)) return -1;
  const size_t cap = (size_t)capacity;
  /* Activations: from the forward step that writes them to the last step that reads
   * them. The inputs, the outputs and what is never run (a fused softmax) live
   * throughout: the caller writes and reads them around the passes. */
  b[0] = (dt_arena_buf_t){cap * dt_shape_size(&m->in_shape), 0, end, 0};
  for (int j = 1; j < m->nin; j++)
    b[nl + j] = (dt_arena_buf_t){cap * dt_shape_size(&m->in_shapes[j]), 0, end, 0};
  for (int i = 0; i < nl; i++) {
    const dt_layer_t *l = &m->layers[i];
    dt_arena_buf_t *a = &b[i + 1];
    a->floats = cap * dt_shape_size(&l->out_shape);
    if (i >= nrun || output_at(m, i + 1) >= 0) {
      a->first = 0, a->last = end;
      continue;
    }
    a->first = a->last = fwd_step(i);
    if (!l->ops->backward_ignores_y) a->last = bwd_step(m, i);
  }
  for (int c = 0; c < nrun; c++) {
    const dt_layer_t *l = &m->layers[c];
    for (int k = 0; k < l->ninputs; k++) {
      dt_arena_buf_t *a = &b[dt_model_act_index(m, l->inputs[k])];
      const int reads = l->ops->backward_ignores_x ? fwd_step(c) : bwd_step(m, c);
      if (reads > a->last) a->last = reads;
    }
  }
  /* Gradients of layer outputs (not the model's inputs, nor an output nobody else reads:
   * that is its dout): from the first backward step that writes a part, the latest
   * consumer's, to the backward of the producer. A part after the first goes through a
   * part buffer that lives for its consumer's step. Simulated in backward order to know
   * which is first. */
  bool *begun = calloc((size_t)nacts, sizeof *begun);
  if (!begun) return -1;
  for (int c = nrun - 1; c >= 0; c--) {
    const dt_layer_t *l = &m->layers[c];
    for (int k = 0; k < l->ninputs; k++) {
      const int p = l->inputs[k], a = dt_model_act_index(m, p);
      if (p < 0 && !(m->input_grad && p == DT_LAYER_MODEL_INPUT)) continue;
      /* The input's gradient (input_grad) lives to the end: the caller reads it. */
      const size_t size = cap * dt_shape_size(p < 0 ? &m->in_shape : &m->layers[p].out_shape);
      if (!begun[a]) {
        begun[a] = true;
        b[nacts + a] = (dt_arena_buf_t){size, bwd_step(m, c), p < 0 ? end : bwd_step(m, p), 0};
      } else {
        b[ipart + c * DT_MAX_LAYER_INPUTS + k] =
            (dt_arena_buf_t){size, bwd_step(m, c), bwd_step(m, c), 0};
      }
    }
  }
  free(begun);
  b[iout] = (dt_arena_buf_t){cap * dt_shape_size(&m->out_shape), 0, end, 0};
  /* Scratch keeps what a layer's forward leaves for its backward: kept throughout. */
  for (int i = 0; i < nl; i++)
    if (m->layers[i].ops->scratch_floats)
      b[iscratch + i] = (dt_arena_buf_t){
          m->layers[i].ops->scratch_floats(&m->layers[i], m->dev, capacity), 0, end, 0};
  for (int k = 1; k < m->nout; k++)
    b[idouts + k - 1] = (dt_arena_buf_t){cap * dt_shape_size(&m->outputs[k].shape), 0, end, 0};
  return n;
}

int dt_model_prepare(dt_model_t *m, int capacity, dt_error_t *err) {
  dt_device_free(m->dev, m->arena);
  free(m->acts);
  free(m->dacts);
  free(m->dpart);
  free(m->dwritten);
  m->arena = NULL;
  free(m->aux_host);
  m->aux_host = NULL;
  m->capacity = capacity;
  const int nl = m->nlayers, nacts = nl + m->nin;
  m->acts = calloc((size_t)nacts, sizeof *m->acts);
  m->dacts = calloc((size_t)nacts, sizeof *m->dacts);
  m->dpart = calloc((size_t)nl * DT_MAX_LAYER_INPUTS, sizeof *m->dpart);
  m->dwritten = calloc((size_t)nacts, sizeof *m->dwritten);
  dt_arena_buf_t *b = NULL;
  int n = m->acts && m->dacts && m->dpart && m->dwritten ? plan(m, capacity, &b) : -1;
  int oom = n < 0;
  size_t total = oom ? 0 : dt_arena_plan(b, n, ARENA_ALIGN_FLOATS, &oom);
  if (oom) {
    free(b);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory preparing the model");
  }
  float *arena;
  int rc = dt_device_alloc(m->dev, (total ? total : 1) * sizeof(float), (void **)&arena, err);
  if (rc) {
    free(b);
    return dt_error_prefix(err, "activations for a batch of %d: ", capacity);
  }
  /* Zeroed so that a layer reading scratch before writing it is deterministic. */
  dt_device_fill(m->stream, arena, total, 0.0f);
  m->arena = arena;
  m->arena_floats = total;
  const int iout = 2 * nacts, ipart = iout + 1, iscratch = ipart + nl * DT_MAX_LAYER_INPUTS,
            idouts = iscratch + nl;
  for (int a = 0; a < nacts; a++) {
    m->acts[a] = arena + b[a].offset;
    m->dacts[a] = b[nacts + a].floats ? arena + b[nacts + a].offset : NULL;
  }
  for (int i = 0; i < nl * DT_MAX_LAYER_INPUTS; i++)
    m->dpart[i] = b[ipart + i].floats ? arena + b[ipart + i].offset : NULL;
  m->dout = arena + b[iout].offset;
  for (int i = 0; i < nl; i++)
    m->layers[i].scratch = b[iscratch + i].floats ? arena + b[iscratch + i].offset : NULL;
  m->outputs[0].dout = m->dout;
  for (int k = 1; k < m->nout; k++) m->outputs[k].dout = arena + b[idouts + k - 1].offset;
  free(b);
  return 0;
}

void dt_model_free(dt_model_t *m) {
  if (m->layers)
    for (int i = 0; i < m->nlayers; i++) free(m->layers[i].priv);
  if (m->grads_ready)
    for (int i = 0; i < m->nlayers; i++) dt_device_event_destroy(m->grads_ready[i]);
  if (m->graph) dt_graph_free(m->graph);
  free(m->graph);
  free(m->grads_ready);
  free(m->layers);
  free(m->params);
  free(m->states);
  free(m->acts);
  free(m->dacts);
  free(m->dpart);
  free(m->dwritten);
  for (int i = 0; i < 3; i++) free(m->host[i]);
  free(m->aux_host);
  /* A model whose build never started has no device (and nothing on one). */
  if (m->dev) {
    if (m->param_buf) dt_device_params_end(m->dev, m->param_buf);
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
  return dt_model_forward_from(m, DT_LAYER_MODEL_INPUT, batch, training, rng);
}

const float *dt_model_forward_from(dt_model_t *m, int from, int batch, bool training,
                                   dt_rng_t *rng) {
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(m, training, rng);
  m->training = training;
  /* The parameters may have changed since the last pass (an optimizer step, a load):
   * the device drops what it converted from them before. */
  dt_device_params_begin(m->dev, m->param_buf, m->num_params);
  for (int i = from + 1; i < m->nrun; i++) {
    dt_layer_t *l = &m->layers[i];
    if (l->ops->max_inputs > 1) {
      const float *xs[DT_MAX_LAYER_INPUTS];
      for (int k = 0; k < l->ninputs; k++) xs[k] = dt_model_input_of(m, i, k);
      l->ops->forward_multi(l, &ctx, batch, xs, m->acts[i + 1]);
    } else {
      l->ops->forward(l, &ctx, batch, dt_model_input_of(m, i, 0), m->acts[i + 1]);
    }
  }
  return m->acts[m->outputs[0].act];
}

/* Where layer i's backward writes dL/d(input k): the producer's gradient buffer for the
 * first part of it, a part buffer (added in after) for the others, NULL for the model's
 * input. */
static float *grad_target(dt_model_t *m, int i, int k, bool *part) {
  const int p = m->layers[i].inputs[k], a = dt_model_act_index(m, p);
  *part = false;
  if (p < 0 && !(m->input_grad && p == DT_LAYER_MODEL_INPUT)) return NULL;
  if (!m->dwritten[a]) {
    m->dwritten[a] = true;
    return m->dacts[a];
  }
  *part = true;
  return m->dpart[i * DT_MAX_LAYER_INPUTS + k];
}

void dt_model_backward(dt_model_t *m, int batch) {
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(m, m->training, NULL);
  memset(m->dwritten, 0, sizeof *m->dwritten * (size_t)(m->nlayers + m->nin));
  for (int i = m->nrun - 1; i >= 0; i--) {
    dt_layer_t *l = &m->layers[i];
    const float *dy = m->dacts[i + 1];
    const int k = output_at(m, i + 1);
    if (k >= 0 && !m->dwritten[i + 1]) {
      dy = m->outputs[k].dout; /* an output nobody else reads */
    } else if (k >= 0) {
      /* An output that later layers read too: its loss's part adds to theirs. */
      float *g = m->dacts[i + 1];
      const float *sum[2] = {g, m->outputs[k].dout};
      dt_device_merge_forward(m->stream, DT_MERGE_ADD,
                              (size_t)batch * dt_shape_size(&l->out_shape), 2, sum, g);
    }
    float *dxs[DT_MAX_LAYER_INPUTS];
    bool part[DT_MAX_LAYER_INPUTS];
    for (int k = 0; k < l->ninputs; k++) dxs[k] = grad_target(m, i, k, &part[k]);
    if (l->ops->max_inputs > 1) {
      const float *xs[DT_MAX_LAYER_INPUTS];
      for (int k = 0; k < l->ninputs; k++) xs[k] = dt_model_input_of(m, i, k);
      l->ops->backward_multi(l, &ctx, batch, xs, m->acts[i + 1], dy, dxs);
    } else {
      l->ops->backward(l, &ctx, batch, dt_model_input_of(m, i, 0), m->acts[i + 1], dy, dxs[0]);
    }
    /* Fan-out: the parts after the first are added into the producer's gradient. */
    for (int k = 0; k < l->ninputs; k++)
      if (part[k]) {
        float *g = m->dacts[dt_model_act_index(m, l->inputs[k])];
        const float *sum[2] = {g, dxs[k]};
        dt_device_merge_forward(m->stream, DT_MERGE_ADD,
                                (size_t)batch * dt_shape_size(&l->in_shapes[k]), 2, sum, g);
      }
    if (l->nparams && m->on_grads_ready) {
      size_t begin = l->param_decl[0].offset;
      size_t end = l->param_decl[l->nparams - 1].offset + l->param_decl[l->nparams - 1].count;
      dt_device_event_record(m->grads_ready[i], m->stream);
      m->on_grads_ready(m->grads_ready_ctx, begin, end, m->grads_ready[i]);
    }
  }
}

const float *dt_model_input_grad(const dt_model_t *m) {
  return m->input_grad && m->dacts ? m->dacts[0] : NULL;
}

int dt_model_check_tail(const dt_model_t *m, int from, dt_error_t *err) {
  if (from < DT_LAYER_MODEL_INPUT || from >= m->nrun)
    return dt_error_set(err, DT_ERR_ARG, "layer index %d is not a layer the model runs", from);
  /* fed[a]: acts[a] is computed from layer from's output alone (or is that output). */
  bool fed[DT_MAX_LAYERS + DT_MAX_MODEL_IO] = {false};
  fed[dt_model_act_index(m, from)] = true;
  for (int i = from + 1; i < m->nrun; i++) {
    const dt_layer_t *l = &m->layers[i];
    for (int k = 0; k < l->ninputs; k++)
      if (!fed[dt_model_act_index(m, l->inputs[k])])
        return dt_error_set(err, DT_ERR_CONFIG,
                            "[%s] layer '%s' takes '%s', which does not come from %s%s%s: "
                            "the layers after it cannot run on latent vectors alone",
                            l->section, l->name, l->input_names[k],
                            from < 0 ? "the model's input" : "layer '",
                            from < 0 ? "" : m->layers[from].name, from < 0 ? "" : "'");
    fed[dt_model_act_index(m, i)] = true;
  }
  return 0;
}

bool dt_model_has_aux_loss(const dt_model_t *m) {
  for (int i = 0; i < m->nrun; i++)
    if (m->layers[i].ops->aux_loss) return true;
  return false;
}

int dt_model_aux_loss(dt_model_t *m, int batch, double *weighted, double *raw, dt_error_t *err) {
  *weighted = *raw = 0.0;
  for (int i = 0; i < m->nrun; i++) {
    const dt_layer_t *l = &m->layers[i];
    if (!l->ops->aux_loss) continue;
    float weight = 1.0f;
    const float *v = l->ops->aux_loss(l, batch, &weight);
    const size_t bytes = sizeof(float) * (size_t)batch;
    if (!m->dev->host_memory && !m->aux_host &&
        !(m->aux_host = malloc(sizeof(float) * (size_t)(m->capacity > 0 ? m->capacity : 1))))
      return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the loss terms of '%s'", l->name);
    void *view = NULL;
    int rc = dt_device_to_host(m->stream, (void *)v, bytes, m->aux_host, &view, err);
    if (rc) return dt_error_prefix(err, "the loss term of '%s': ", l->name);
    const float *h = view;
    double sum = 0.0;
    for (int b = 0; b < batch; b++) sum += h[b];
    const double mean = batch > 0 ? sum / batch : 0.0;
    *raw += mean;
    *weighted += weight * mean;
  }
  return 0;
}


size_t dt_model_input_size(const dt_model_t *m) {
  size_t n = 0;
  for (int j = 0; j < m->nin; j++) n += dt_shape_size(&m->in_shapes[j]);
  return n;
}

float *dt_model_input(const dt_model_t *m, int j) {
  return m->acts[dt_model_act_index(m, DT_LAYER_MODEL_INPUT - j)];
}

const float *dt_model_output(const dt_model_t *m, int k) { return m->acts[m->outputs[k].act]; }

void dt_model_set_inputs(dt_model_t *m, const float *x, int batch) {
  if (m->nin == 1) {
    memcpy(m->acts[0], x, sizeof(float) * dt_model_input_size(m) * (size_t)batch);
    return;
  }
  /* A sample's values are the inputs' values one after another. */
  const size_t row = dt_model_input_size(m);
  size_t off = 0;
  for (int j = 0; j < m->nin; j++) {
    const size_t d = dt_shape_size(&m->in_shapes[j]);
    float *dst = dt_model_input(m, j);
    for (int b = 0; b < batch; b++)
      memcpy(dst + (size_t)b * d, x + (size_t)b * row + off, sizeof(float) * d);
    off += d;
  }
}
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

/* "conv_2, block1_out" into buf: the names of layer l's inputs. */
static const char *input_list(const dt_layer_t *l, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int k = 0; k < l->ninputs && used < cap; k++)
    used += (size_t)snprintf(buf + used, cap - used, k ? ", %s" : "%s", l->input_names[k]);
  return buf;
}

size_t dt_model_summary(const dt_model_t *m, char *buf, size_t cap) {
  size_t used = 0;
  char s[64], in[256];
  append(buf, cap, &used, "%-20s %-16s %12s%s\n", "Layer", "Output shape", "Params",
         m->is_graph ? "  Inputs" : "");
  append(buf, cap, &used, "%-20s %-16s %12s\n", "input", dt_shape_str(&m->in_shape, s, sizeof s), "");
  for (int i = 0; i < m->nlayers; i++) {
    const dt_layer_t *l = &m->layers[i];
    size_t n = 0;
    for (int p = 0; p < l->nparams; p++) n += l->param_decl[p].count;
    append(buf, cap, &used, "%-20s %-16s %12zu%s%s%s\n", l->name,
           dt_shape_str(&l->out_shape, s, sizeof s), n, m->is_graph ? "  " : "",
           m->is_graph ? input_list(l, in, sizeof in) : "",
           i >= m->nrun ? "  (fused into the loss)" : "");
  }
  append(buf, cap, &used, "Total params: %zu (%.2f MB)\n", m->num_params,
         m->num_params * 4.0 / (1 << 20));
  if (m->num_states)
    append(buf, cap, &used, "Non-trainable state: %zu values\n", m->num_states);
  if (m->arena)
    append(buf, cap, &used, "Activation arena: %zu values (%.2f MB) for batches of up to %d\n",
           m->arena_floats, m->arena_floats * 4.0 / (1 << 20), m->capacity);
  return used;
}
