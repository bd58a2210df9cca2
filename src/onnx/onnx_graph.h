/* Building an ONNX graph in memory (private to src/onnx): nodes with their attributes,
 * constant tensors (initializers), fresh value names, and the model around them. Every
 * piece is allocated from the builder's pool and freed with it; a failed allocation
 * sets `oom`, makes the call return NULL, and is reported once by whoever finishes the
 * graph (so the layer mappings need not check each call). */
#ifndef DTRAIN_ONNX_GRAPH_H
#define DTRAIN_ONNX_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

typedef Dtrain__Onnx__NodeProto ox_node_t;

typedef struct {
  void **pool; /* every allocation, freed by ox_free */
  size_t npool, cappool;
  ox_node_t **nodes;
  size_t nnodes, capnodes;
  Dtrain__Onnx__TensorProto **inits;
  size_t ninits, capinits;
  int counter; /* for fresh names */
  bool oom;
} ox_graph_t;

void ox_free(ox_graph_t *g);

/* A value name unique in the graph: "<prefix>_<n>". */
const char *ox_fresh(ox_graph_t *g, const char *prefix);

/* A node of op_type with inputs in[0..nin-1] and outputs out[0..nout-1] (names are
 * copied; an empty name is an absent optional input or output). */
ox_node_t *ox_node(ox_graph_t *g, const char *op_type, const char *const *in, int nin,
                   const char *const *out, int nout);
/* One input, one output: the common case. Returns the output name, a fresh one with
 * prefix `out` (NULL on failure); *node receives the node when node is not NULL. */
const char *ox_unary(ox_graph_t *g, const char *op_type, const char *in, ox_node_t **node);
/* Two inputs, one fresh output. */
const char *ox_binary(ox_graph_t *g, const char *op_type, const char *a, const char *b,
                      ox_node_t **node);

void ox_attr_int(ox_graph_t *g, ox_node_t *n, const char *name, int64_t v);
void ox_attr_float(ox_graph_t *g, ox_node_t *n, const char *name, float v);
void ox_attr_ints(ox_graph_t *g, ox_node_t *n, const char *name, const int64_t *v, int count);
void ox_attr_string(ox_graph_t *g, ox_node_t *n, const char *name, const char *v);

/* A float or int64 initializer of the given dims, its values copied; returns its name
 * (a fresh one with `prefix`). */
const char *ox_const_float(ox_graph_t *g, const char *prefix, const int64_t *dims, int ndim,
                           const float *v);
const char *ox_const_int64(ox_graph_t *g, const char *prefix, const int64_t *dims, int ndim,
                           const int64_t *v);
/* A 1-d int64 initializer (shapes, axes). */
const char *ox_const_ints(ox_graph_t *g, const char *prefix, const int64_t *v, int count);

/* A float tensor value's declaration with a first dimension named `batch` and the
 * others fixed. */
Dtrain__Onnx__ValueInfoProto *ox_value_info(ox_graph_t *g, const char *name, const int *dims,
                                            int ndim);

/* The model: ir_version, opset, producer, and the graph with its nodes, initializers,
 * one input and one output. The pointer is the builder's (freed by ox_free). */
Dtrain__Onnx__ModelProto *ox_model(ox_graph_t *g, Dtrain__Onnx__ValueInfoProto *input,
                                   Dtrain__Onnx__ValueInfoProto *output, int64_t opset,
                                   const char *graph_name);

#endif
