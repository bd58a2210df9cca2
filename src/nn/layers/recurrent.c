/* The recurrent cells (SimpleRNN, LSTM, GRU) shared by the recurrent layers; see
 * recurrent.h for the parameter layout and the time-major scratch.
 *
 * Equations, as Keras computes them (x_t the input, h the previous hidden state):
 *   SimpleRNN: h_t = tanh(x_t K + h R + b)
 *   LSTM:      [i, f, g, o] = [sig, sig, tanh, sig](x_t K + h R + b)
 *              c_t = f c + i g,  h_t = o tanh(c_t)
 *   GRU:       [xz, xr, xh] = x_t K + b_in,  [rz, rr, rh] = h R + b_rec
 *              z = sig(xz + rz),  r = sig(xr + rr),  hh = tanh(xh + r rh)
 *              h_t = z h + (1 - z) hh
 * The GEMMs run on the device, and so does each time step's element-wise work (the
 * gate non-linearities and the state update, and their backward: one kernel per step,
 * dt_device_rnn_step_forward/backward). */
#include "recurrent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scratch ---- */

/* Scratch pieces start on 64-byte lines, like the model's arena. */
enum { ALIGN_FLOATS = 16 };

typedef struct {
  float *xt;  /* (T, B, F) the input, time-major, in processing order */
  float *a;   /* (T, B, G) input projections x K (no bias), then the gate activations */
  float *da;  /* (T, B, G) dL/d(pre-activations); the GRU's input side */
  float *dar; /* (T, B, G) GRU: dL/d(recurrent projection); others: = da */
  float *rh;  /* (T, B, u) GRU: the recurrent h block h R_h + b_rh */
  float *rp;  /* (B, G) GRU: one step's recurrent projection h R (no bias) */
  float *h;   /* (T + 1, B, u) hidden states; block 0 is the zero initial state */
  float *cs;  /* (T + 1, B, u) LSTM cell states; block 0 is zero */
  float *tc;  /* (T, B, u) LSTM tanh of the cell states */
  float *dh;  /* (B, u) dL/dh_t of the step being differentiated */
  float *dhn; /* (B, u) dL/dh carried to the step before */
  float *dc;  /* (B, u) LSTM dL/dc carried to the step before */
  float *dxt; /* (T, B, F) dL/dx, time-major */
} bufs_t;

static void take(float **p, float *base, size_t *used, size_t n) {
  *p = base ? base + *used : NULL;
  *used += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* Lays the pieces out from base (or only counts them when base is NULL); returns the
 * floats used. */
static size_t carve(const dt_rnn_cell_t *c, int batch, float *base, bufs_t *b) {
  const size_t T = (size_t)c->steps, B = (size_t)batch, F = (size_t)c->features,
               u = (size_t)c->units, G = (size_t)c->gates * u;
  const bool lstm = c->kind == DT_RNN_LSTM, gru = c->kind == DT_RNN_GRU;
  size_t used = 0;
  take(&b->xt, base, &used, T * B * F);
  take(&b->a, base, &used, T * B * G);
  take(&b->da, base, &used, T * B * G);
  take(&b->dar, base, &used, gru ? T * B * G : 0);
  take(&b->rh, base, &used, gru ? T * B * u : 0);
  take(&b->rp, base, &used, gru ? B * G : 0);
  take(&b->h, base, &used, (T + 1) * B * u);
  take(&b->cs, base, &used, lstm ? (T + 1) * B * u : 0);
  take(&b->tc, base, &used, lstm ? T * B * u : 0);
  take(&b->dh, base, &used, B * u);
  take(&b->dhn, base, &used, B * u);
  take(&b->dc, base, &used, lstm ? B * u : 0);
  take(&b->dxt, base, &used, T * B * F);
  if (!gru) b->dar = b->da;
  return used;
}

size_t dt_rnn_cell_scratch_floats(const dt_rnn_cell_t *c, int batch) {
  bufs_t b;
  return carve(c, batch, NULL, &b);
}

/* ---- forward and backward over the sequence ---- */

/* The sample's time step that processing step t reads. */
static inline int step_time(const dt_rnn_cell_t *c, int t) {
  return c->reverse ? c->steps - 1 - t : t;
}

void dt_rnn_cell_forward(const dt_rnn_cell_t *c, dt_layer_t *l, dt_stream_t *st,
                         float *scratch, int batch, const float *x, float *y, dt_rnn_out_t out) {
  bufs_t s;
  carve(c, batch, scratch, &s);
  const int T = c->steps, F = c->features, u = c->units, G = c->gates * c->units, B = batch;
  const size_t BU = (size_t)B * u, BG = (size_t)B * G, rows = (size_t)T * B;
  const float *K = l->w[c->param0], *R = l->w[c->param0 + 1], *bias = l->w[c->param0 + 2];

  /* x (B, T, F) -> xt (T, B, F), reversed in time for the backward direction. */
  dt_device_seq_gather(st, T, B, F, c->reverse, x, F, 0, s.xt);
  /* The input projection of every step at once (the step kernels add the bias). */
  dt_device_gemm(st, DT_NO_TRANS, DT_NO_TRANS, (int)rows, G, F, 1.0f, s.xt, F, K, G, 0.0f, s.a,
                 G);

  dt_device_fill(st, s.h, BU, 0.0f);
  if (c->kind == DT_RNN_LSTM) dt_device_fill(st, s.cs, BU, 0.0f);
  for (int t = 0; t < T; t++) {
    float *a = s.a + t * BG;
    const float *hp = s.h + t * BU;
    /* h_0 = 0: the first step has no recurrent term. The GRU keeps its recurrent
     * projection apart, since the reset gate scales its h block. */
    if (c->kind == DT_RNN_GRU && t == 0)
      dt_device_fill(st, s.rp, BG, 0.0f);
    else if (c->kind == DT_RNN_GRU)
      dt_device_gemm(st, DT_NO_TRANS, DT_NO_TRANS, B, G, u, 1.0f, hp, u, R, G, 0.0f, s.rp, G);
    else if (t > 0)
      dt_device_gemm(st, DT_NO_TRANS, DT_NO_TRANS, B, G, u, 1.0f, hp, u, R, G, 1.0f, a, G);
    dt_rnn_step_t step = {.kind = c->kind, .batch = B, .units = u, .a = a, .bias = bias,
                          .h_prev = hp, .h_next = s.h + (t + 1) * BU};
    if (c->kind == DT_RNN_LSTM) {
      step.c_prev = s.cs + t * BU;
      step.c_next = s.cs + (t + 1) * BU;
      step.tanh_c = s.tc + t * BU;
    } else if (c->kind == DT_RNN_GRU) {
      step.rp = s.rp;
      step.rh = s.rh + t * BU;
    }
    dt_device_rnn_step_forward(st, &step);
  }

  if (c->return_sequences)
    dt_device_seq_scatter(st, T, B, u, c->reverse, s.h + BU, y, out.width, out.offset,
                          out.accumulate);
  else
    dt_device_seq_scatter(st, 1, B, u, false, s.h + T * BU, y, out.width, out.offset,
                          out.accumulate);
}

void dt_rnn_cell_backward(const dt_rnn_cell_t *c, dt_layer_t *l, dt_stream_t *st,
                          float *scratch, int batch, const float *dy, dt_rnn_out_t out,
                          float *dx, bool dx_accumulate) {
  bufs_t s;
  carve(c, batch, scratch, &s);
  const int T = c->steps, F = c->features, u = c->units, G = c->gates * c->units, B = batch;
  const size_t BU = (size_t)B * u, BG = (size_t)B * G, rows = (size_t)T * B;
  const float *K = l->w[c->param0], *R = l->w[c->param0 + 1];
  float *gK = l->g[c->param0], *gR = l->g[c->param0 + 1], *gb = l->g[c->param0 + 2];

  dt_device_fill(st, s.dhn, BU, 0.0f);
  if (c->kind == DT_RNN_LSTM) dt_device_fill(st, s.dc, BU, 0.0f);
  /* The step kernels add every step's bias gradient (both rows of the GRU's). */
  dt_device_fill(st, gb, (size_t)(c->kind == DT_RNN_GRU ? 2 : 1) * G, 0.0f);
  for (int t = T - 1; t >= 0; t--) {
    /* The output gradient of this step, if it has an output: row b of the sample's
     * (T, width) or (width) rows. */
    const bool has_dy = c->return_sequences || t == T - 1;
    const float *dy_t = c->return_sequences ? dy + (size_t)step_time(c, t) * out.width + out.offset
                                            : dy + out.offset;
    dt_rnn_step_back_t step = {
        .kind = c->kind,
        .batch = B,
        .units = u,
        .dy = has_dy ? dy_t : NULL,
        .dy_stride = c->return_sequences ? (size_t)T * out.width : (size_t)out.width,
        .dh = s.dh,
        .dh_carry = s.dhn,
        .a = s.a + t * BG,
        .da = s.da + t * BG,
        .dar = s.dar + t * BG,
        .dbias = gb};
    if (c->kind == DT_RNN_SIMPLE) {
      step.h_next = s.h + (t + 1) * BU;
    } else if (c->kind == DT_RNN_LSTM) {
      step.c_prev = s.cs + t * BU;
      step.tanh_c = s.tc + t * BU;
      step.dc = s.dc;
    } else {
      step.rh = s.rh + t * BU;
      step.h_prev = s.h + t * BU;
    }
    dt_device_rnn_step_backward(st, &step);
    /* dL/dh_{t-1} through the recurrent kernel (added to the GRU's direct path z dh
     * already in dhn); h_0 is a constant. */
    if (t > 0)
      dt_device_gemm(st, DT_NO_TRANS, DT_TRANS, B, u, G, 1.0f, s.dar + t * BG, G, R, G,
                     c->kind == DT_RNN_GRU ? 1.0f : 0.0f, s.dhn, u);
  }

  /* Parameter gradients over all steps at once. */
  dt_device_gemm(st, DT_TRANS, DT_NO_TRANS, F, G, (int)rows, 1.0f, s.xt, F, s.da, G, 0.0f, gK, G);
  /* dR = sum over t >= 1 of h_{t-1}^T dar_t (h_0 = 0 adds nothing). */
  if (T > 1)
    dt_device_gemm(st, DT_TRANS, DT_NO_TRANS, u, G, (int)(rows - B), 1.0f, s.h + BU, u,
                   s.dar + BG, G, 0.0f, gR, G);
  else
    dt_device_fill(st, gR, (size_t)u * G, 0.0f);

  if (!dx) return;
  dt_device_gemm(st, DT_NO_TRANS, DT_TRANS, (int)rows, F, G, 1.0f, s.da, G, K, G, 0.0f, s.dxt, F);
  dt_device_seq_scatter(st, T, B, F, c->reverse, s.dxt, dx, F, 0, dx_accumulate);
}

/* ---- initialization ---- */

/* w (rows, cols), rows <= cols: a random matrix with orthonormal rows, as Keras'
 * Orthogonal initializer gives (QR of a normal matrix, signs fixed so that R has a
 * positive diagonal, which is what Gram-Schmidt yields). Modified Gram-Schmidt done
 * twice, with sums in double, is orthogonal to float precision. */
static void orthogonal(float *w, int rows, int cols, dt_rng_t *rng) {
  for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = dt_rng_normal(rng);
  for (int pass = 0; pass < 2; pass++) {
    for (int r = 0; r < rows; r++) {
      float *v = w + (size_t)r * cols;
      for (int q = 0; q < r; q++) {
        const float *e = w + (size_t)q * cols;
        double dot = 0.0;
        for (int j = 0; j < cols; j++) dot += (double)v[j] * e[j];
        for (int j = 0; j < cols; j++) v[j] -= (float)(dot * e[j]);
      }
      double norm = 0.0;
      for (int j = 0; j < cols; j++) norm += (double)v[j] * v[j];
      norm = sqrt(norm);
      if (norm > 0.0)
        for (int j = 0; j < cols; j++) v[j] = (float)(v[j] / norm);
    }
  }
}

void dt_rnn_cell_init(const dt_rnn_cell_t *c, float *const *w, dt_rng_t *rng) {
  if (c->orthogonal) orthogonal(w[c->param0 + 1], c->units, c->gates * c->units, rng);
  if (c->forget_bias)
    for (int j = 0; j < c->units; j++) w[c->param0 + 2][c->units + j] = 1.0f;
}

/* ---- building ---- */

const char *dt_rnn_kind_name(dt_rnn_kind kind) {
  switch (kind) {
    case DT_RNN_SIMPLE:
      return "simple_rnn";
    case DT_RNN_LSTM:
      return "lstm";
    case DT_RNN_GRU:
      return "gru";
  }
  return "?";
}

/* recurrent_initializer: the initializer names plus "orthogonal" (Keras' default). */
static int get_recurrent_init(dt_config_t *cfg, const char *section, dt_init_kind *kind,
                              bool *orth, dt_error_t *err) {
  const char *name;
  int rc = dt_config_get_string(cfg, section, "recurrent_initializer", "orthogonal", &name, err);
  if (rc) return rc;
  *orth = strcmp(name, "orthogonal") == 0;
  /* The orthogonal matrix is written by dt_rnn_cell_init; until then zeros, which
   * draw nothing from the initialization stream. */
  *kind = DT_INIT_ZEROS;
  if (*orth) return 0;
  for (int i = 0; dt_init_names[i]; i++)
    if (strcmp(dt_init_names[i], name) == 0) {
      *kind = (dt_init_kind)i;
      return 0;
    }
  char list[256];
  size_t used = 0;
  list[0] = '\0';
  for (int i = 0; dt_init_names[i] && used < sizeof list; i++)
    used += (size_t)snprintf(list + used, sizeof list - used, "%s, ", dt_init_names[i]);
  return dt_error_set(err, DT_ERR_CONFIG,
                      "%s: [%s] recurrent_initializer = '%s': expected one of %sorthogonal",
                      dt_config_where(cfg, section, "recurrent_initializer"), section, name, list);
}

int dt_rnn_cell_build(dt_rnn_cell_t *c, dt_layer_t *l, dt_config_t *cfg, const char *section,
                      dt_rnn_kind kind, const char *what, const char *prefix, bool reverse,
                      dt_error_t *err) {
  memset(c, 0, sizeof *c);
  char s[64];
  if (l->in_shape.ndim != 2)
    return dt_error_set(err, DT_ERR_SHAPE,
                        "%s: the %s layer reads sequences (time steps, features) but its input is "
                        "%s: set [model] input = T,F, or put an embedding or a layer with "
                        "return_sequences = true before it",
                        dt_config_where(cfg, section, NULL), what,
                        dt_shape_str(&l->in_shape, s, sizeof s));
  if (!dt_config_has_key(cfg, section, "units"))
    return dt_error_set(err, DT_ERR_CONFIG, "%s: the %s layer needs 'units'",
                        dt_config_where(cfg, section, NULL), what);
  /* The model appends an activation layer for this key; for a recurrent layer a Keras
   * user would mean the cell's own activation, which is fixed here. */
  if (dt_config_has_key(cfg, section, "activation"))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s: [%s] the %s layer's cell activation is tanh (and sigmoid for its "
                        "gates) and cannot be changed; 'activation' would append a separate "
                        "layer after it: give that layer its own [layer.N] section",
                        dt_config_where(cfg, section, "activation"), section, what);
  long units;
  dt_init_kind kinit, rinit, binit;
  int rc;
  if ((rc = dt_config_get_int(cfg, section, "units", 0, 1, 1 << 20, &units, err)) ||
      (rc = dt_config_get_bool(cfg, section, "return_sequences", false, &c->return_sequences,
                               err)) ||
      (rc = dt_layer_get_init(cfg, section, "kernel_initializer", DT_INIT_GLOROT_UNIFORM, &kinit,
                              err)) ||
      (rc = get_recurrent_init(cfg, section, &rinit, &c->orthogonal, err)) ||
      (rc = dt_layer_get_init(cfg, section, "bias_initializer", DT_INIT_ZEROS, &binit, err)))
    return rc;
  if (kind == DT_RNN_LSTM &&
      (rc = dt_config_get_bool(cfg, section, "unit_forget_bias", true, &c->forget_bias, err)))
    return rc;
  if (kind == DT_RNN_GRU) {
    bool reset_after;
    if ((rc = dt_config_get_bool(cfg, section, "reset_after", true, &reset_after, err)))
      return rc;
    if (!reset_after)
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: [%s] reset_after = false is not implemented: the GRU is Keras' "
                          "default reset_after = true form (reset gate applied after the "
                          "recurrent projection, bias (2, 3 * units))",
                          dt_config_where(cfg, section, "reset_after"), section);
  }
  c->kind = kind;
  c->steps = l->in_shape.dims[0];
  c->features = l->in_shape.dims[1];
  c->units = (int)units;
  c->gates = kind == DT_RNN_LSTM ? 4 : kind == DT_RNN_GRU ? 3 : 1;
  c->reverse = reverse;
  c->param0 = l->nparams;
  const int G = c->gates * c->units;
  char name[DT_NAME_MAX];
  snprintf(name, sizeof name, "%skernel", prefix);
  dt_layer_declare_param(l, name, (dt_shape_t){2, {c->features, G, 1, 1}}, kinit, c->features, G,
                         true);
  snprintf(name, sizeof name, "%srecurrent_kernel", prefix);
  dt_layer_declare_param(l, name, (dt_shape_t){2, {c->units, G, 1, 1}}, rinit, c->units, G, true);
  snprintf(name, sizeof name, "%sbias", prefix);
  dt_layer_declare_param(l, name,
                         kind == DT_RNN_GRU ? (dt_shape_t){2, {2, G, 1, 1}} : dt_shape_1d(G), binit,
                         c->features, G, false);
  return 0;
}

/* ---- the one-cell layers ---- */

int dt_rnn_layer_build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_rnn_kind kind,
                       dt_error_t *err) {
  dt_rnn_cell_t cell;
  int rc = dt_rnn_cell_build(&cell, l, cfg, section, kind, dt_rnn_kind_name(kind), "", false, err);
  if (rc) return rc;
  dt_rnn_cell_t *c = malloc(sizeof *c);
  if (!c) return dt_error_set(err, DT_ERR_NOMEM, "out of memory building %s", l->name);
  *c = cell;
  l->priv = c;
  l->out_shape = c->return_sequences ? (dt_shape_t){2, {c->steps, c->units, 1, 1}}
                                     : dt_shape_1d(c->units);
  return 0;
}

size_t dt_rnn_layer_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch) {
  (void)dev;
  return dt_rnn_cell_scratch_floats(l->priv, batch);
}

void dt_rnn_layer_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                          float *y) {
  const dt_rnn_cell_t *c = l->priv;
  dt_rnn_cell_forward(c, l, ctx->stream, l->scratch, batch, x, y,
                      (dt_rnn_out_t){c->units, 0, false});
}

void dt_rnn_layer_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                           const float *y, const float *dy, float *dx) {
  (void)x; /* forward kept its time-major copy in scratch */
  (void)y;
  const dt_rnn_cell_t *c = l->priv;
  dt_rnn_cell_backward(c, l, ctx->stream, l->scratch, batch, dy,
                       (dt_rnn_out_t){c->units, 0, false}, dx, false);
}

void dt_rnn_layer_init(dt_layer_t *l, float *const *w, dt_rng_t *rng) {
  dt_rnn_cell_init(l->priv, w, rng);
}
