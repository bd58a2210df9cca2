/* The in-memory ONNX graph builder (see onnx_graph.h). */
#include "onnx_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ONNX IR version 8 is the one that goes with opsets 15 to 18. */
enum { IR_VERSION = 8 };

static void *grow(ox_graph_t *g, void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return *arr;
  size_t nc = *cap ? 2 * *cap : 16;
  void *p = realloc(*arr, nc * elem);
  if (!p) {
    g->oom = true;
    return NULL;
  }
  *arr = p;
  *cap = nc;
  return p;
}

static void *alloc(ox_graph_t *g, size_t size) {
  if (g->oom) return NULL;
  if (!grow(g, (void **)&g->pool, &g->cappool, g->npool, sizeof *g->pool)) return NULL;
  void *p = calloc(1, size ? size : 1);
  if (!p) {
    g->oom = true;
    return NULL;
  }
  g->pool[g->npool++] = p;
  return p;
}

static char *dup(ox_graph_t *g, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = alloc(g, n);
  if (p) memcpy(p, s, n);
  return p;
}

void ox_free(ox_graph_t *g) {
  for (size_t i = 0; i < g->npool; i++) free(g->pool[i]);
  free(g->pool);
  free(g->nodes);
  free(g->inits);
  memset(g, 0, sizeof *g);
}

const char *ox_fresh(ox_graph_t *g, const char *prefix) {
  char buf[160];
  snprintf(buf, sizeof buf, "%s_%d", prefix, g->counter++);
  return dup(g, buf);
}

static char **names(ox_graph_t *g, const char *const *v, int n) {
  char **out = alloc(g, sizeof *out * (size_t)(n > 0 ? n : 1));
  for (int i = 0; out && i < n; i++)
    if (!(out[i] = dup(g, v[i]))) return NULL;
  return out;
}

ox_node_t *ox_node(ox_graph_t *g, const char *op_type, const char *const *in, int nin,
                   const char *const *out, int nout) {
  ox_node_t *n = alloc(g, sizeof *n);
  if (!n) return NULL;
  *n = (ox_node_t)DTRAIN__ONNX__NODE_PROTO__INIT;
  n->op_type = dup(g, op_type);
  n->name = nout > 0 && out[0] ? dup(g, out[0]) : NULL;
  n->input = names(g, in, nin);
  n->n_input = (size_t)nin;
  n->output = names(g, out, nout);
  n->n_output = (size_t)nout;
  if (g->oom || !grow(g, (void **)&g->nodes, &g->capnodes, g->nnodes, sizeof *g->nodes))
    return NULL;
  g->nodes[g->nnodes++] = n;
  return n;
}

const char *ox_unary(ox_graph_t *g, const char *op_type, const char *in, ox_node_t **node) {
  const char *out = ox_fresh(g, op_type);
  if (!out || !in) return NULL;
  ox_node_t *n = ox_node(g, op_type, &in, 1, &out, 1);
  if (node) *node = n;
  return n ? out : NULL;
}

const char *ox_binary(ox_graph_t *g, const char *op_type, const char *a, const char *b,
                      ox_node_t **node) {
  const char *out = ox_fresh(g, op_type);
  if (!out || !a || !b) return NULL;
  const char *in[2] = {a, b};
  ox_node_t *n = ox_node(g, op_type, in, 2, &out, 1);
  if (node) *node = n;
  return n ? out : NULL;
}

static Dtrain__Onnx__AttributeProto *attr(ox_graph_t *g, ox_node_t *n, const char *name,
                                          Dtrain__Onnx__AttributeProto__AttributeType type) {
  if (!n) return NULL;
  Dtrain__Onnx__AttributeProto *a = alloc(g, sizeof *a);
  if (!a) return NULL;
  *a = (Dtrain__Onnx__AttributeProto)DTRAIN__ONNX__ATTRIBUTE_PROTO__INIT;
  a->name = dup(g, name);
  a->has_type = 1;
  a->type = type;
  /* Each node has a handful of attributes: grow the array one at a time. */
  Dtrain__Onnx__AttributeProto **arr = alloc(g, sizeof *arr * (n->n_attribute + 1));
  if (!arr) return NULL;
  if (n->n_attribute) memcpy(arr, n->attribute, sizeof *arr * n->n_attribute);
  arr[n->n_attribute++] = a;
  n->attribute = arr;
  return a;
}

void ox_attr_int(ox_graph_t *g, ox_node_t *n, const char *name, int64_t v) {
  Dtrain__Onnx__AttributeProto *a = attr(g, n, name, DTRAIN__ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (a) a->has_i = 1, a->i = v;
}

void ox_attr_float(ox_graph_t *g, ox_node_t *n, const char *name, float v) {
  Dtrain__Onnx__AttributeProto *a =
      attr(g, n, name, DTRAIN__ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (a) a->has_f = 1, a->f = v;
}

void ox_attr_ints(ox_graph_t *g, ox_node_t *n, const char *name, const int64_t *v, int count) {
  Dtrain__Onnx__AttributeProto *a =
      attr(g, n, name, DTRAIN__ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  if (!a || !(a->ints = alloc(g, sizeof *v * (size_t)count))) return;
  memcpy(a->ints, v, sizeof *v * (size_t)count);
  a->n_ints = (size_t)count;
}

void ox_attr_string(ox_graph_t *g, ox_node_t *n, const char *name, const char *v) {
  Dtrain__Onnx__AttributeProto *a =
      attr(g, n, name, DTRAIN__ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  char *s = dup(g, v);
  if (a && s) a->has_s = 1, a->s = (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static const char *add_const(ox_graph_t *g, const char *prefix, const int64_t *dims, int ndim,
                             const void *v, size_t elem, int32_t type) {
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)dims[i];
  Dtrain__Onnx__TensorProto *t = alloc(g, sizeof *t);
  const char *name = ox_fresh(g, prefix);
  int64_t *d = alloc(g, sizeof *d * (size_t)(ndim > 0 ? ndim : 1));
  /* raw_data is little-endian; the hosts dtrain runs on are (x86-64, aarch64). */
  uint8_t *raw = alloc(g, count * elem);
  if (!t || !name || !d || !raw) return NULL;
  *t = (Dtrain__Onnx__TensorProto)DTRAIN__ONNX__TENSOR_PROTO__INIT;
  if (ndim) memcpy(d, dims, sizeof *d * (size_t)ndim);
  if (count) memcpy(raw, v, count * elem);
  t->dims = d;
  t->n_dims = (size_t)ndim;
  t->has_data_type = 1;
  t->data_type = type;
  t->name = (char *)name;
  t->has_raw_data = 1;
  t->raw_data = (ProtobufCBinaryData){count * elem, raw};
  if (!grow(g, (void **)&g->inits, &g->capinits, g->ninits, sizeof *g->inits)) return NULL;
  g->inits[g->ninits++] = t;
  return name;
}

const char *ox_const_float(ox_graph_t *g, const char *prefix, const int64_t *dims, int ndim,
                           const float *v) {
  return add_const(g, prefix, dims, ndim, v, sizeof *v,
                   DTRAIN__ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
}

const char *ox_const_int64(ox_graph_t *g, const char *prefix, const int64_t *dims, int ndim,
                           const int64_t *v) {
  return add_const(g, prefix, dims, ndim, v, sizeof *v,
                   DTRAIN__ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
}

const char *ox_const_ints(ox_graph_t *g, const char *prefix, const int64_t *v, int count) {
  const int64_t dims[1] = {count};
  return ox_const_int64(g, prefix, dims, 1, v);
}

Dtrain__Onnx__ValueInfoProto *ox_value_info(ox_graph_t *g, const char *name, const int *dims,
                                            int ndim) {
  Dtrain__Onnx__ValueInfoProto *vi = alloc(g, sizeof *vi);
  Dtrain__Onnx__TypeProto *tp = alloc(g, sizeof *tp);
  Dtrain__Onnx__TypeProto__Tensor *tt = alloc(g, sizeof *tt);
  Dtrain__Onnx__TensorShapeProto *sh = alloc(g, sizeof *sh);
  Dtrain__Onnx__TensorShapeProto__Dimension **dv = alloc(g, sizeof *dv * (size_t)(ndim + 1));
  if (!vi || !tp || !tt || !sh || !dv) return NULL;
  for (int i = 0; i <= ndim; i++) {
    Dtrain__Onnx__TensorShapeProto__Dimension *d = alloc(g, sizeof *d);
    if (!d) return NULL;
    *d = (Dtrain__Onnx__TensorShapeProto__Dimension)DTRAIN__ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    if (i == 0) {
      d->value_case = DTRAIN__ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = dup(g, "batch");
    } else {
      d->value_case = DTRAIN__ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i - 1];
    }
    dv[i] = d;
  }
  *sh = (Dtrain__Onnx__TensorShapeProto)DTRAIN__ONNX__TENSOR_SHAPE_PROTO__INIT;
  sh->dim = dv;
  sh->n_dim = (size_t)ndim + 1;
  *tt = (Dtrain__Onnx__TypeProto__Tensor)DTRAIN__ONNX__TYPE_PROTO__TENSOR__INIT;
  tt->has_elem_type = 1;
  tt->elem_type = DTRAIN__ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = sh;
  *tp = (Dtrain__Onnx__TypeProto)DTRAIN__ONNX__TYPE_PROTO__INIT;
  tp->value_case = DTRAIN__ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  *vi = (Dtrain__Onnx__ValueInfoProto)DTRAIN__ONNX__VALUE_INFO_PROTO__INIT;
  vi->name = dup(g, name);
  vi->type = tp;
  return g->oom ? NULL : vi;
}

Dtrain__Onnx__ModelProto *ox_model(ox_graph_t *g, Dtrain__Onnx__ValueInfoProto *input,
                                   Dtrain__Onnx__ValueInfoProto *output, int64_t opset,
                                   const char *graph_name) {
  Dtrain__Onnx__ModelProto *m = alloc(g, sizeof *m);
  Dtrain__Onnx__GraphProto *gp = alloc(g, sizeof *gp);
  Dtrain__Onnx__OperatorSetIdProto *os = alloc(g, sizeof *os);
  Dtrain__Onnx__OperatorSetIdProto **osv = alloc(g, sizeof *osv);
  Dtrain__Onnx__ValueInfoProto **in = alloc(g, sizeof *in), **out = alloc(g, sizeof *out);
  if (!m || !gp || !os || !osv || !in || !out || !input || !output) return NULL;
  *os = (Dtrain__Onnx__OperatorSetIdProto)DTRAIN__ONNX__OPERATOR_SET_ID_PROTO__INIT;
  os->domain = dup(g, ""); /* the default ai.onnx domain */
  os->has_version = 1;
  os->version = opset;
  osv[0] = os;
  in[0] = input;
  out[0] = output;
  *gp = (Dtrain__Onnx__GraphProto)DTRAIN__ONNX__GRAPH_PROTO__INIT;
  gp->name = dup(g, graph_name);
  gp->node = g->nodes;
  gp->n_node = g->nnodes;
  gp->initializer = g->inits;
  gp->n_initializer = g->ninits;
  gp->input = in;
  gp->n_input = 1;
  gp->output = out;
  gp->n_output = 1;
  *m = (Dtrain__Onnx__ModelProto)DTRAIN__ONNX__MODEL_PROTO__INIT;
  m->has_ir_version = 1;
  m->ir_version = IR_VERSION;
  m->producer_name = dup(g, "dtrain");
  m->producer_version = dup(g, "0.1.0");
  m->graph = gp;
  m->opset_import = osv;
  m->n_opset_import = 1;
  return g->oom ? NULL : m;
}
