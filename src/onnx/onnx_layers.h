/* One layer of a model as ONNX nodes (private to src/onnx). */
#ifndef DTRAIN_ONNX_LAYERS_H
#define DTRAIN_ONNX_LAYERS_H

#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "onnx_graph.h"

/* Adds the nodes (and initializers) that compute layer l from the value named `in`,
 * whose per-sample shape is l->in_shape (channels-last, batch first); w[i] and s[i] are
 * the host values of its parameter and state tensors. Sets *out to the name of the
 * value that holds the layer's output (`in` itself for a layer that computes nothing
 * at inference, dropout). Returns 0 or a negative dt_err (an unknown layer type). */
int dt_onnx_add_layer(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                      const float *const *s, const char *in, const char **out, dt_error_t *err);

#endif
