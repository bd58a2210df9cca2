/* Embedding (Keras' Embedding): each input value is a token id and becomes the row of
 * the (input_dim, output_dim) embeddings matrix with that index, so an input of shape
 * (T) gives (T, output_dim). The data pipeline hands ids over as floats; they are
 * truncated toward zero like Keras' cast to int. An id outside [0, input_dim) (or NaN)
 * gives a row of zeros and no gradient, instead of reading out of bounds (Keras on a
 * GPU does the same; on a CPU it raises). Ids are not differentiable: dx is zero. */
#include <stdlib.h>

#include "dtrain/layer.h"

typedef struct {
  int input_dim, output_dim;
} embedding_t;

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  char s[64];
  if (!dt_config_has_key(cfg, section, "input_dim") ||
      !dt_config_has_key(cfg, section, "output_dim"))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: an embedding layer needs 'input_dim' (the number of token ids) and "
                        "'output_dim' (the size of each embedding)",
                        dt_config_where(cfg, section, NULL));
  if (l->in_shape.ndim >= DT_MAX_DIMS)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: an embedding layer adds a dimension to its input %s, which has the "
                        "most (%d) already",
                        dt_config_where(cfg, section, NULL),
                        dt_shape_str(&l->in_shape, s, sizeof s), DT_MAX_DIMS);
  long input_dim, output_dim;
  dt_init_kind init;
  int rc;
  /* Ids up to 2^24 are exact in a float. */
  if ((rc = dt_config_get_int(cfg, section, "input_dim", 0, 1, 1 << 24, &input_dim, err)) ||
      (rc = dt_config_get_int(cfg, section, "output_dim", 0, 1, 1 << 20, &output_dim, err)) ||
      (rc = dt_layer_get_init(cfg, section, "embeddings_initializer", DT_INIT_GLOROT_UNIFORM, &init,
                              err)))
    return rc;
  embedding_t *e = malloc(sizeof *e);
  if (!e) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  e->input_dim = (int)input_dim;
  e->output_dim = (int)output_dim;
  l->priv = e;
  l->out_shape = l->in_shape;
  l->out_shape.dims[l->out_shape.ndim++] = e->output_dim;
  dt_layer_declare_param(l, "embeddings", (dt_shape_t){2, {e->input_dim, e->output_dim, 1, 1}},
                         init, e->input_dim, e->output_dim, true);
  return 0;
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  const embedding_t *e = l->priv;
  dt_device_embedding_forward(ctx->stream, (size_t)batch * dt_shape_size(&l->in_shape),
                              e->input_dim, (size_t)e->output_dim, x, l->w[0], y);
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)y;
  const embedding_t *e = l->priv;
  const size_t n = (size_t)batch * dt_shape_size(&l->in_shape);
  dt_device_embedding_backward(ctx->stream, n, e->input_dim, (size_t)e->output_dim, x, dy,
                               l->g[0]);
  if (dx) dt_device_fill(ctx->stream, dx, n, 0.0f);
}

const dt_layer_ops_t dt_layer_embedding = {
    .type = "embedding", .build = build, .forward = forward, .backward = backward};
