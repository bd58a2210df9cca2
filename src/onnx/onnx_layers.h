/* One layer of a model as ONNX nodes (private to src/onnx). */
#ifndef DTRAIN_ONNX_LAYERS_H
#define DTRAIN_ONNX_LAYERS_H

#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "onnx_graph.h"

/* Adds the nodes (and initializers) that compute layer l from the values named
 * in[0..l->ninputs), whose per-sample shapes are l->in_shapes[] (channels-last, batch
 * first: every value between layers keeps dtrain's layout, so merges and concatenations
 * of images need no transposes); w[i] and s[i] are the host values of its parameter and
 * state tensors. Sets *out to the name of the value that holds the layer's output
 * (`in[0]` itself for a layer that computes nothing at inference, dropout). Returns 0
 * or a negative dt_err (an unknown layer type). */
int dt_onnx_add_layer(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                      const float *const *s, const char *const *in, const char **out,
                      dt_error_t *err);

#endif
