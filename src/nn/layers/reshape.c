/* Reshape and Flatten, as Keras': target_shape = 28,28,1 gives each sample that shape
 * (the number of values must stay the same); flatten gives one vector. The data are
 * row-major either way, so both are the same copy forward and backward. */
#include "dtrain/layer.h"

static int build_flatten(dt_layer_t *l, dt_config_t *cfg, const char *section,
                         dt_error_t *err) {
  (void)cfg;
  (void)section;
  (void)err;
  l->out_shape = dt_shape_1d((int)dt_shape_size(&l->in_shape));
  return 0;
}

static int build_reshape(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  int dims[DT_MAX_DIMS], n, rc;
  if (!dt_config_has_key(cfg, section, "target_shape"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: a reshape layer needs 'target_shape'",
                        dt_config_where(cfg, section, NULL));
  if ((rc = dt_config_get_int_list(cfg, section, "target_shape", dims, 3, &n, err))) return rc;
  dt_shape_t s = {n, {1, 1, 1, 1}};
  for (int i = 0; i < n; i++) s.dims[i] = dims[i];
  if (dt_shape_size(&s) != dt_shape_size(&l->in_shape)) {
    char a[64], b[64];
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: [%s] target_shape %s has %zu values but the input %s has %zu",
                        dt_config_where(cfg, section, "target_shape"), section,
                        dt_shape_str(&s, a, sizeof a), dt_shape_size(&s),
                        dt_shape_str(&l->in_shape, b, sizeof b), dt_shape_size(&l->in_shape));
  }
  l->out_shape = s;
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  dt_device_copy(ctx->stream, y, x, sizeof(float) * (size_t)batch * dt_shape_size(&l->in_shape),
                 DT_COPY_D2D);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  if (dx)
    dt_device_copy(ctx->stream, dx, dy,
                   sizeof(float) * (size_t)batch * dt_shape_size(&l->in_shape), DT_COPY_D2D);
}

const dt_layer_ops_t dt_layer_flatten = {
    .type = "flatten", .build = build_flatten, .forward = forward, .backward = backward};
const dt_layer_ops_t dt_layer_reshape = {
    .type = "reshape", .build = build_reshape, .forward = forward, .backward = backward};
