/* Shared parts of the element-wise merge layers (add, subtract, multiply, average,
 * maximum): Keras' merges of equally shaped inputs, one device kernel each way. */
#ifndef DTRAIN_MERGE_COMMON_H
#define DTRAIN_MERGE_COMMON_H

#include "dtrain/layer.h"

/* Every input must have the shape of the first; the output has it too. */
static inline int dt_merge_build(dt_layer_t *l, dt_config_t *cfg, const char *section,
                                 dt_error_t *err) {
  for (int k = 1; k < l->ninputs; k++) {
    const dt_shape_t *a = &l->in_shapes[0], *b = &l->in_shapes[k];
    bool same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->dims[d] == b->dims[d];
    if (!same) {
      char sa[64], sb[64];
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: [%s] %s needs inputs of one shape, but '%s' is %s and '%s' is %s",
                          dt_config_where(cfg, section, "inputs"), section, l->ops->type,
                          l->input_names[0], dt_shape_str(a, sa, sizeof sa), l->input_names[k],
                          dt_shape_str(b, sb, sizeof sb));
    }
  }
  l->out_shape = l->in_shapes[0];
  return 0;
}

static inline void dt_merge_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                                    dt_merge_kind kind, const float *const *xs, float *y) {
  dt_device_merge_forward(ctx->stream, kind, (size_t)batch * dt_shape_size(&l->out_shape),
                          l->ninputs, xs, y);
}

static inline void dt_merge_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                                     dt_merge_kind kind, const float *const *xs, const float *y,
                                     const float *dy, float *const *dxs) {
  dt_device_merge_backward(ctx->stream, kind, (size_t)batch * dt_shape_size(&l->out_shape),
                           l->ninputs, xs, y, dy, dxs);
}

/* The ops of a merge layer named `name` with kind KIND and inputs from MIN to MAX;
 * IGNORES_X: its backward needs only dy. */
#define DT_MERGE_LAYER(var, name, KIND, MIN, MAX, IGNORES_X)                                     \
  static void forward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,                 \
                            const float *const *xs, float *y) {                                 \
    dt_merge_forward(l, ctx, batch, KIND, xs, y);                                               \
  }                                                                                             \
  static void backward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,                \
                             const float *const *xs, const float *y, const float *dy,           \
                             float *const *dxs) {                                               \
    dt_merge_backward(l, ctx, batch, KIND, xs, y, dy, dxs);                                     \
  }                                                                                             \
  const dt_layer_ops_t var = {.type = name,                                                     \
                              .build = dt_merge_build,                                          \
                              .min_inputs = MIN,                                                \
                              .max_inputs = MAX,                                                \
                              .forward_multi = forward_multi,                                   \
                              .backward_multi = backward_multi,                                 \
                              .backward_ignores_x = IGNORES_X,                                  \
                              .backward_ignores_y = IGNORES_X}

#endif
