/* dt_onnx_export: walks the model's layers, maps each to ONNX nodes (onnx_layers.c),
 * and writes the ModelProto. */
#include "dtrain/onnx_export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_graph.h"
#include "onnx_layers.h"

typedef struct {
  const dt_model_t *m;
  const char **value; /* (nlayers) the name of each layer's output value */
} walk_t;

/* The names of the values layer i reads: for each of its inputs the producing layer's
 * output, or the graph's input. A value read by several layers (a skip connection, the
 * model's input fanned out) is simply named by each; layers[] is in topological order,
 * so every producer's name is known by then. Returns the number of names written. */
static int layer_inputs(const walk_t *wk, int i, const char **names) {
  const dt_layer_t *l = &wk->m->layers[i];
  for (int k = 0; k < l->ninputs; k++)
    names[k] = l->inputs[k] == DT_LAYER_MODEL_INPUT ? "input" : wk->value[l->inputs[k]];
  return l->ninputs;
}

static int write_file(const char *path, const uint8_t *buf, size_t len, dt_error_t *err) {
  const size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return dt_error_set(err, DT_ERR_NOMEM, "ONNX export '%s': out of memory", path);
  snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int rc = dt_error_set(err, DT_ERR_IO, "ONNX export: cannot create '%s': %s", tmp,
                          strerror(errno));
    free(tmp);
    return rc;
  }
  const bool ok = fwrite(buf, 1, len, f) == len;
  const int saved = errno;
  if (fclose(f) != 0 || !ok) {
    int rc = dt_error_set(err, DT_ERR_IO, "ONNX export: cannot write '%s': %s", tmp,
                          strerror(ok ? errno : saved));
    remove(tmp);
    free(tmp);
    return rc;
  }
  if (rename(tmp, path) != 0) {
    int rc = dt_error_set(err, DT_ERR_IO, "ONNX export: cannot rename '%s' to '%s': %s", tmp,
                          path, strerror(errno));
    remove(tmp);
    free(tmp);
    return rc;
  }
  free(tmp);
  return 0;
}

int dt_onnx_export(const dt_model_t *m, const float *params, const float *states,
                   const char *path, dt_error_t *err) {
  if (m->nin > 1 || m->nout > 1)
    return dt_error_set(err, DT_ERR_ARG,
                        "ONNX export '%s': the model has %d inputs and %d outputs; the exporter "
                        "takes one of each", path, m->nin, m->nout);
  ox_graph_t g = {0};
  walk_t wk = {m, calloc((size_t)(m->nlayers > 0 ? m->nlayers : 1), sizeof *wk.value)};
  int rc = 0;
  uint8_t *buf = NULL;
  if (!wk.value) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "ONNX export '%s': out of memory", path);
    goto done;
  }
  /* The layers forward runs; the loss's softmax or sigmoid (a final layer the loss
   * fuses, or the activation a cross-entropy on logits implies) is added after them. */
  for (int i = 0; i < m->nrun; i++) {
    const dt_layer_t *l = &m->layers[i];
    const float *w[DT_MAX_LAYER_PARAMS] = {0}, *s[DT_MAX_LAYER_STATES] = {0};
    for (int p = 0; p < l->nparams; p++) w[p] = params + l->param_decl[p].offset;
    for (int p = 0; p < l->nstates; p++) s[p] = states + l->state_decl[p].offset;
    const char *in[DT_MAX_LAYER_INPUTS];
    layer_inputs(&wk, i, in);
    if ((rc = dt_onnx_add_layer(&g, l, w, s, in, &wk.value[i], err))) {
      dt_error_prefix(err, "'%s': ", path);
      goto done;
    }
  }
  const char *last = m->nrun ? wk.value[m->nrun - 1] : "input";
  const char *out = "output";
  const dt_shape_t *os = &m->out_shape;
  if (m->loss == DT_LOSS_SOFTMAX_CE || m->loss == DT_LOSS_BCE_LOGITS) {
    /* Probabilities, as predict gives: the softmax runs over all values of a sample. */
    ox_node_t *n;
    if (m->loss == DT_LOSS_BCE_LOGITS) {
      last = ox_unary(&g, "Sigmoid", last, NULL);
    } else if (os->ndim == 1) {
      last = ox_unary(&g, "Softmax", last, &n);
      ox_attr_int(&g, n, "axis", -1);
    } else {
      last = ox_unary(&g, "Flatten", last, &n);
      ox_attr_int(&g, n, "axis", 1);
      last = ox_unary(&g, "Softmax", last, &n);
      ox_attr_int(&g, n, "axis", -1);
      int64_t shape[DT_MAX_DIMS + 1] = {0};
      for (int i = 0; i < os->ndim; i++) shape[i + 1] = os->dims[i];
      last = ox_binary(&g, "Reshape", last, ox_const_ints(&g, "shape", shape, os->ndim + 1),
                       NULL);
    }
  }
  if (last) ox_node(&g, "Identity", &last, 1, &out, 1);
  Dtrain__Onnx__ModelProto *mp =
      ox_model(&g, ox_value_info(&g, "input", m->in_shape.dims, m->in_shape.ndim),
               ox_value_info(&g, "output", os->dims, os->ndim), DT_ONNX_OPSET, "dtrain");
  if (!mp) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "ONNX export '%s': out of memory", path);
    goto done;
  }
  const size_t len = dtrain__onnx__model_proto__get_packed_size(mp);
  if (!(buf = malloc(len ? len : 1))) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "ONNX export '%s': out of memory (%zu bytes)", path,
                      len);
    goto done;
  }
  dtrain__onnx__model_proto__pack(mp, buf);
  rc = write_file(path, buf, len, err);
done:
  free(buf);
  free(wk.value);
  ox_free(&g);
  return rc;
}
