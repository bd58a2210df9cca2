/* Concatenate (Keras' Concatenate): 2 to 8 inputs joined along `axis` (default -1, the
 * last). As in Keras the axis counts the batch axis as 0, so for samples of shape
 * (h, w, c) axis = 3 and axis = -1 both mean the channels and axis = 0 is refused; the
 * inputs must agree on every other axis. In row-major memory each input is a run of
 * `outer` rows (batch times the dimensions before the axis) of its own width, placed at
 * its column offset in the output's rows: one strided copy per input each way. */
#include <stdlib.h>

#include "dtrain/layer.h"

typedef struct {
  size_t outer_per_sample;               /* product of the per-sample dims before the axis */
  size_t width[DT_MAX_LAYER_INPUTS];     /* per-input row width: dims from the axis on */
  size_t offset[DT_MAX_LAYER_INPUTS];    /* its column offset in the output's rows */
  size_t out_width;
} concat_t;

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  const int nd = l->in_shapes[0].ndim;
  long axis;
  int rc = dt_config_get_int(cfg, section, "axis", -1, -nd, nd, &axis, err);
  if (rc) return rc;
  if (axis == 0)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [%s] axis = 0 is the batch axis, which concatenate cannot join "
                        "(axis 1 to %d, or -1 to -%d, name the sample's axes)",
                        dt_config_where(cfg, section, "axis"), section, nd, nd);
  const int a = axis < 0 ? nd + (int)axis : (int)axis - 1; /* index into the sample's dims */
  dt_shape_t out = l->in_shapes[0];
  out.dims[a] = 0;
  for (int k = 0; k < l->ninputs; k++) {
    const dt_shape_t *s = &l->in_shapes[k];
    bool fits = s->ndim == nd;
    for (int d = 0; fits && d < nd; d++) fits = d == a || s->dims[d] == l->in_shapes[0].dims[d];
    if (!fits) {
      char s0[64], sk[64];
      return dt_error_set(err, DT_ERR_SHAPE,
                          "%s: [%s] concatenate along axis %ld needs inputs that agree on every "
                          "other axis, but '%s' is %s and '%s' is %s",
                          dt_config_where(cfg, section, "inputs"), section, axis,
                          l->input_names[0], dt_shape_str(&l->in_shapes[0], s0, sizeof s0),
                          l->input_names[k], dt_shape_str(s, sk, sizeof sk));
    }
    out.dims[a] += s->dims[a];
  }
  concat_t *c = calloc(1, sizeof *c);
  if (!(l->priv = c)) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building [%s]", section);
  c->outer_per_sample = 1;
  for (int d = 0; d < a; d++) c->outer_per_sample *= (size_t)out.dims[d];
  for (int k = 0; k < l->ninputs; k++) {
    c->width[k] = dt_shape_size(&l->in_shapes[k]) / c->outer_per_sample;
    c->offset[k] = c->out_width;
    c->out_width += c->width[k];
  }
  l->out_shape = out;
  return 0;
}

static void forward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                          const float *const *xs, float *y) {
  const concat_t *c = l->priv;
  const size_t rows = (size_t)batch * c->outer_per_sample;
  for (int k = 0; k < l->ninputs; k++)
    dt_device_copy_rows(ctx->stream, rows, c->width[k], xs[k], c->width[k], y + c->offset[k],
                        c->out_width);
}

static void backward_multi(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                           const float *const *xs, const float *y, const float *dy,
                           float *const *dxs) {
  (void)xs;
  (void)y;
  const concat_t *c = l->priv;
  const size_t rows = (size_t)batch * c->outer_per_sample;
  for (int k = 0; k < l->ninputs; k++)
    if (dxs[k])
      dt_device_copy_rows(ctx->stream, rows, c->width[k], dy + c->offset[k], c->out_width,
                          dxs[k], c->width[k]);
}

const dt_layer_ops_t dt_layer_concatenate = {.type = "concatenate",
                                             .build = build,
                                             .min_inputs = 2,
                                             .max_inputs = DT_MAX_LAYER_INPUTS,
                                             .forward_multi = forward_multi,
                                             .backward_multi = backward_multi,
                                             .backward_ignores_x = true,
                                             .backward_ignores_y = true};
