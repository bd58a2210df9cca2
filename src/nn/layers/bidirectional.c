/* Bidirectional wrapper (Keras' Bidirectional): the inner recurrent layer named by
 * `layer` runs once forward in time and once, with its own parameters, from the last
 * step to the first; the two outputs are concatenated (merge_mode = concat, the forward
 * half first) or summed. With return_sequences the backward half's outputs are put back
 * in input order, so step t of both halves lines up, as in Keras. The section holds the
 * inner layer's keys (units, return_sequences, initializers, ...). */
#include <stdlib.h>

#include "dtrain/layer_info.h"
#include "info_parts.h"
#include "recurrent.h"

typedef struct {
  dt_rnn_cell_t cell[2]; /* forward, backward */
  bool sum;              /* merge_mode = sum */
} bidirectional_t;

static const char *const inner_names[] = {"simple_rnn", "lstm", "gru", NULL};
static const dt_rnn_kind inner_kinds[] = {DT_RNN_SIMPLE, DT_RNN_LSTM, DT_RNN_GRU};
static const char *const merge_names[] = {"concat", "sum", NULL};

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  if (!dt_config_has_key(cfg, section, "layer"))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: a bidirectional layer needs 'layer' (lstm, gru or simple_rnn)",
                        dt_config_where(cfg, section, NULL));
  int inner, merge, rc;
  if ((rc = dt_config_get_choice(cfg, section, "layer", NULL, inner_names, &inner, err)) ||
      (rc = dt_config_get_choice(cfg, section, "merge_mode", "concat", merge_names, &merge, err)))
    return rc;
  bidirectional_t bi = {.sum = merge == 1};
  const dt_rnn_kind kind = inner_kinds[inner];
  if ((rc = dt_rnn_cell_build(&bi.cell[0], l, cfg, section, kind, "bidirectional", "forward_",
                              false, err)) ||
      (rc = dt_rnn_cell_build(&bi.cell[1], l, cfg, section, kind, "bidirectional", "backward_",
                              true, err)))
    return rc;
  bidirectional_t *p = malloc(sizeof *p);
  if (!p) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  *p = bi;
  l->priv = p;
  const dt_rnn_cell_t *c = &p->cell[0];
  const int width = p->sum ? c->units : 2 * c->units;
  l->out_shape = c->return_sequences ? (dt_shape_t){2, {c->steps, width, 1, 1}}
                                     : dt_shape_1d(width);
  return 0;
}

static size_t scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  const bidirectional_t *p = l->priv;
  return dt_rnn_cell_scratch_floats(&p->cell[0], batch) +
         dt_rnn_cell_scratch_floats(&p->cell[1], batch);
}

/* Where each half writes its output (and reads its gradient). */
static dt_rnn_out_t half_out(const bidirectional_t *p, int half) {
  const int u = p->cell[0].units;
  if (p->sum) return (dt_rnn_out_t){u, 0, half == 1};
  return (dt_rnn_out_t){2 * u, half * u, false};
}

static void forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                    float *y) {
  const bidirectional_t *p = l->priv;
  float *second = l->scratch + dt_rnn_cell_scratch_floats(&p->cell[0], batch);
  dt_rnn_cell_forward(&p->cell[0], l, ctx->stream, l->scratch, batch, x, y, half_out(p, 0));
  dt_rnn_cell_forward(&p->cell[1], l, ctx->stream, second, batch, x, y, half_out(p, 1));
}

static void backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     const float *y, const float *dy, float *dx) {
  (void)x;
  (void)y;
  const bidirectional_t *p = l->priv;
  float *second = l->scratch + dt_rnn_cell_scratch_floats(&p->cell[0], batch);
  dt_rnn_cell_backward(&p->cell[0], l, ctx->stream, l->scratch, batch, dy, half_out(p, 0), dx,
                       false);
  dt_rnn_cell_backward(&p->cell[1], l, ctx->stream, second, batch, dy, half_out(p, 1), dx, true);
}

static void init_params(dt_layer_t *l, float *const *w, dt_rng_t *rng) {
  const bidirectional_t *p = l->priv;
  dt_rnn_cell_init(&p->cell[0], w, rng);
  dt_rnn_cell_init(&p->cell[1], w, rng);
}

const dt_layer_ops_t dt_layer_bidirectional = {.type = "bidirectional",
                                               .build = build,
                                               .scratch_floats = scratch_floats,
                                               .forward = forward,
                                               .backward = backward,
                                               .init_params = init_params};

void dt_bidirectional_info(const dt_layer_t *l, dt_layer_info_t *out) {
  const bidirectional_t *p = l->priv;
  out->rnn_kind = p->cell[0].kind;
  out->units = p->cell[0].units;
  out->return_sequences = p->cell[0].return_sequences;
  out->merge_sum = p->sum;
}
