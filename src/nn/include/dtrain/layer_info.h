/* The settings of a built layer, for whoever writes the model out in another format
 * (the ONNX exporter): what each layer type read from its config section and keeps in
 * its private state. Shapes and parameters are in dt_layer_t itself; this adds what
 * they do not show. */
#ifndef DTRAIN_LAYER_INFO_H
#define DTRAIN_LAYER_INFO_H

#include <stdbool.h>

#include "dtrain/device.h"
#include "dtrain/layer.h"

typedef struct dt_layer_info {
  /* conv1d, conv2d, conv2d_transpose, max_pool2d, avg_pool2d: the geometry (a conv1d is
   * a (1, T) image; a transposed convolution's geometry is that of the convolution it
   * is the adjoint of, from its output to its input) */
  dt_conv_geom_t geom;
  bool use_bias;
  /* simple_rnn, lstm, gru, bidirectional */
  dt_rnn_kind rnn_kind;
  int units;
  bool return_sequences;
  bool merge_sum; /* bidirectional: merge_mode = sum (else concat) */
  /* batch_norm: epsilon, and the parameter indices of gamma and beta (-1 when off) */
  float epsilon;
  int gamma, beta;
  /* leaky_relu */
  float alpha;
} dt_layer_info_t;

/* Fills *out for l (fields of other layer types are zero). Returns false for a layer
 * type this function does not know (a type added later without an entry here). */
bool dt_layer_info(const dt_layer_t *l, dt_layer_info_t *out);

#endif
