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
 * The sigmoid and tanh of the gates use exp_split below, which GCC vectorizes (libm's
 * expf is a call per element, and the gate non-linearities would otherwise cost about
 * as much as the GEMMs). */
#include "recurrent.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/hot.h"

/* ---- vectorizable exp, sigmoid and tanh ---- */

/* e^x = 2^n (1 + q), split so that both e^x and e^x - 1 keep their relative accuracy
 * (within 2 ulp over [-87, 87]; inputs beyond are clamped there, which leaves sigmoid
 * and tanh saturated to float precision). Cephes' method: x = n ln2 + r with
 * |r| <= ln2 / 2 and q = e^r - 1 from a polynomial in r. n is rounded by adding
 * 1.5 * 2^23, which also leaves n in the low mantissa bits of t; -std=c11 keeps
 * contraction off, so the add is not fused away. Branch-free (one select for the
 * clamp) so that loops over it vectorize. */
static inline void exp_split(float x, float *scale, float *q) {
  x = fabsf(x) > 87.0f ? copysignf(87.0f, x) : x;
  const float t = x * 1.44269504f + 12582912.0f;
  const float n = t - 12582912.0f;
  /* ln 2 in two parts, so that n * ln2_hi is exact. */
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  *q = p * r * r + r;
  uint32_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits - 0x4B400000u + 127u) << 23; /* 2^n: biased exponent n + 127 in 1..254 */
  memcpy(scale, &bits, sizeof *scale);
}

/* Relative error about 2e-7 everywhere (1 / (1 + e^-x) has no cancellation). */
static inline float sigm(float x) {
  float s, q;
  exp_split(-x, &s, &q);
  return 1.0f / (1.0f + (s * q + s));
}

/* tanh |x| = -m / (2 + m) with m = e^(-2|x|) - 1: no cancellation near 0 either, so the
 * relative error stays within 3 ulp (2 sig(2x) - 1 would lose it for small x, and the
 * gradient checks see that). */
static inline float tanh_approx(float x) {
  float s, q;
  exp_split(-2.0f * fabsf(x), &s, &q);
  const float m = s * q + (s - 1.0f);
  return copysignf(-m / (2.0f + m), x);
}

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

/* ---- the element-wise parts of one time step ----
 *
 * Each function handles one sample's row of a step: the pre-activations a (G) of the
 * gate blocks, with the bias added here rather than copied under the input projection
 * beforehand, and in backward the bias gradient summed here rather than in a pass of
 * its own. These row loops are the compiled-twice functions: GCC does not inline a
 * function into a clone for another -march, so a clone of the caller would call the
 * plain (SSE2) row loop. */

/* a (4u): pre-activations in, gate activations [i, f, g, o] out; cp the previous cell
 * state; writes the cell state cn, its tanh tc and the hidden state hn. */
DT_HOT_LOOP static void lstm_row(int u, float *restrict a, const float *restrict bias,
                                 const float *restrict cp, float *restrict cn,
                                 float *restrict tc, float *restrict hn) {
  for (int j = 0; j < u; j++) {
    const float i = sigm(a[j] + bias[j]), f = sigm(a[u + j] + bias[u + j]);
    const float g = tanh_approx(a[2 * u + j] + bias[2 * u + j]);
    const float o = sigm(a[3 * u + j] + bias[3 * u + j]);
    const float cv = f * cp[j] + i * g, t = tanh_approx(cv);
    a[j] = i;
    a[u + j] = f;
    a[2 * u + j] = g;
    a[3 * u + j] = o;
    cn[j] = cv;
    tc[j] = t;
    hn[j] = o * t;
  }
}

/* From dh = dL/dh_t and dc = dL/dc_t carried from the step after (without this step's
 * h path), writes the pre-activation gradients of the four gate blocks (d[0..3], each
 * u), adds them to the bias gradient blocks db[0..3] and leaves dL/dc_{t-1} in dc.
 * The blocks are separate restrict pointers so that GCC sees that they do not overlap. */
DT_HOT_LOOP static void lstm_row_back(int u, const float *restrict ai, const float *restrict af,
                                      const float *restrict ag, const float *restrict ao,
                                      const float *restrict cp, const float *restrict tc,
                                      const float *restrict dh, float *restrict dc,
                                      float *restrict d0, float *restrict d1, float *restrict d2,
                                      float *restrict d3, float *restrict b0, float *restrict b1,
                                      float *restrict b2, float *restrict b3) {
  for (int j = 0; j < u; j++) {
    const float i = ai[j], f = af[j], g = ag[j], o = ao[j], t = tc[j];
    const float dcv = dc[j] + dh[j] * o * (1.0f - t * t);
    const float di = dcv * g * i * (1.0f - i), df = dcv * cp[j] * f * (1.0f - f);
    const float dg = dcv * i * (1.0f - g * g), dout = dh[j] * t * o * (1.0f - o);
    d0[j] = di;
    d1[j] = df;
    d2[j] = dg;
    d3[j] = dout;
    b0[j] += di;
    b1[j] += df;
    b2[j] += dg;
    b3[j] += dout;
    dc[j] = dcv * f;
  }
}

/* a (3u): input projections in, [z, r, hh] out; rp (3u) the recurrent projection h R;
 * bias (2, 3u) input and recurrent bias; hp the previous hidden state; writes hn and
 * keeps the recurrent h block (with its bias) in rh. */
DT_HOT_LOOP static void gru_row(int u, float *restrict a, const float *restrict rp,
                                const float *restrict bias, const float *restrict hp,
                                float *restrict hn, float *restrict rh) {
  const float *restrict br = bias + 3 * u;
  for (int j = 0; j < u; j++) {
    const float z = sigm(a[j] + bias[j] + (rp[j] + br[j]));
    const float r = sigm(a[u + j] + bias[u + j] + (rp[u + j] + br[u + j]));
    const float rhv = rp[2 * u + j] + br[2 * u + j];
    const float hh = tanh_approx(a[2 * u + j] + bias[2 * u + j] + r * rhv);
    a[j] = z;
    a[u + j] = r;
    a[2 * u + j] = hh;
    rh[j] = rhv;
    hn[j] = z * hp[j] + (1.0f - z) * hh;
  }
}

/* Writes the gradients of the input projection (x[0..2]) and of the recurrent
 * projection (q[0..2]), blocks z, r, h of u each, adds them to the bias gradients (bx,
 * bq) and writes dhn = the direct part z dh of dL/dh_{t-1}. */
DT_HOT_LOOP static void gru_row_back(int u, const float *restrict az, const float *restrict ar,
                                     const float *restrict ah, const float *restrict rh,
                                     const float *restrict hp, const float *restrict dh,
                                     float *restrict x0, float *restrict x1, float *restrict x2,
                                     float *restrict q0, float *restrict q1, float *restrict q2,
                                     float *restrict bx0, float *restrict bx1,
                                     float *restrict bx2, float *restrict bq0,
                                     float *restrict bq1, float *restrict bq2,
                                     float *restrict dhn) {
  for (int j = 0; j < u; j++) {
    const float z = az[j], r = ar[j], hh = ah[j], d = dh[j];
    const float dz = d * (hp[j] - hh) * z * (1.0f - z);
    const float dhh = d * (1.0f - z) * (1.0f - hh * hh);
    const float dr = dhh * rh[j] * r * (1.0f - r);
    x0[j] = q0[j] = dz;
    x1[j] = q1[j] = dr;
    x2[j] = dhh;
    q2[j] = dhh * r;
    bx0[j] += dz;
    bx1[j] += dr;
    bx2[j] += dhh;
    bq0[j] += dz;
    bq1[j] += dr;
    bq2[j] += dhh * r;
    dhn[j] = d * z;
  }
}

/* hn = tanh(a + bias) over u units. */
DT_HOT_LOOP static void simple_row(int u, const float *restrict a, const float *restrict bias,
                                   float *restrict hn) {
  for (int j = 0; j < u; j++) hn[j] = tanh_approx(a[j] + bias[j]);
}

/* da = dh (1 - h^2), added to db. */
DT_HOT_LOOP static void simple_row_back(int u, const float *restrict h, const float *restrict dh,
                                        float *restrict da, float *restrict db) {
  for (int j = 0; j < u; j++) {
    da[j] = dh[j] * (1.0f - h[j] * h[j]);
    db[j] += da[j];
  }
}

/* ---- forward and backward over the sequence ---- */

/* The sample's time step that processing step t reads. */
static inline int step_time(const dt_rnn_cell_t *c, int t) {
  return c->reverse ? c->steps - 1 - t : t;
}

/* dst (=|+=) src over n floats. */
static inline void put(float *dst, const float *src, size_t n, bool accumulate) {
  if (accumulate)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
  else
    memcpy(dst, src, n * sizeof(float));
}

void dt_rnn_cell_forward(const dt_rnn_cell_t *c, dt_layer_t *l, float *scratch, int batch,
                         const float *x, float *y, dt_rnn_out_t out) {
  bufs_t s;
  carve(c, batch, scratch, &s);
  const int T = c->steps, F = c->features, u = c->units, G = c->gates * c->units, B = batch;
  const size_t BU = (size_t)B * u, BG = (size_t)B * G, rows = (size_t)T * B;
  const float *K = l->w[c->param0], *R = l->w[c->param0 + 1], *bias = l->w[c->param0 + 2];

  /* x (B, T, F) -> xt (T, B, F), reversed in time for the backward direction. */
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++)
      memcpy(s.xt + ((size_t)t * B + b) * F, x + ((size_t)b * T + step_time(c, t)) * F,
             sizeof(float) * F);
  /* The input projection of every step at once (the row functions add the bias). */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, G, F, 1.0f, s.xt, F, K, G,
              0.0f, s.a, G);

  memset(s.h, 0, BU * sizeof(float));
  if (c->kind == DT_RNN_LSTM) memset(s.cs, 0, BU * sizeof(float));
  for (int t = 0; t < T; t++) {
    float *a = s.a + t * BG;
    const float *hp = s.h + t * BU;
    float *hn = s.h + (t + 1) * BU;
    /* h_0 = 0: the first step has no recurrent term. The GRU keeps its recurrent
     * projection apart, since the reset gate scales its h block. */
    if (c->kind == DT_RNN_GRU && t == 0)
      memset(s.rp, 0, BG * sizeof(float));
    else if (c->kind == DT_RNN_GRU)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, G, u, 1.0f, hp, u, R, G, 0.0f,
                  s.rp, G);
    else if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, G, u, 1.0f, hp, u, R, G, 1.0f, a,
                  G);
    for (int b = 0; b < B; b++) {
      float *ab = a + (size_t)b * G;
      const size_t o = (size_t)b * u;
      switch (c->kind) {
        case DT_RNN_SIMPLE:
          simple_row(u, ab, bias, hn + o);
          break;
        case DT_RNN_LSTM:
          lstm_row(u, ab, bias, s.cs + t * BU + o, s.cs + (t + 1) * BU + o, s.tc + t * BU + o,
                   hn + o);
          break;
        case DT_RNN_GRU:
          gru_row(u, ab, s.rp + (size_t)b * G, bias, hp + o, hn + o, s.rh + t * BU + o);
          break;
      }
    }
  }

  if (c->return_sequences) {
    for (int t = 0; t < T; t++)
      for (int b = 0; b < B; b++)
        put(y + ((size_t)b * T + step_time(c, t)) * out.width + out.offset,
            s.h + (t + 1) * BU + (size_t)b * u, (size_t)u, out.accumulate);
  } else {
    for (int b = 0; b < B; b++)
      put(y + (size_t)b * out.width + out.offset, s.h + T * BU + (size_t)b * u, (size_t)u,
          out.accumulate);
  }
}

void dt_rnn_cell_backward(const dt_rnn_cell_t *c, dt_layer_t *l, float *scratch, int batch,
                          const float *dy, dt_rnn_out_t out, float *dx, bool dx_accumulate) {
  bufs_t s;
  carve(c, batch, scratch, &s);
  const int T = c->steps, F = c->features, u = c->units, G = c->gates * c->units, B = batch;
  const size_t BU = (size_t)B * u, BG = (size_t)B * G, rows = (size_t)T * B;
  const float *K = l->w[c->param0], *R = l->w[c->param0 + 1];
  float *gK = l->g[c->param0], *gR = l->g[c->param0 + 1], *gb = l->g[c->param0 + 2];

  memset(s.dhn, 0, BU * sizeof(float));
  if (c->kind == DT_RNN_LSTM) memset(s.dc, 0, BU * sizeof(float));
  /* The row functions add every step's bias gradient (both rows of the GRU's). */
  memset(gb, 0, sizeof(float) * (c->kind == DT_RNN_GRU ? 2 : 1) * G);
  for (int t = T - 1; t >= 0; t--) {
    /* dL/dh_t: what the step after sent back plus this step's output gradient. */
    const bool has_dy = c->return_sequences || t == T - 1;
    for (int b = 0; b < B; b++) {
      float *dh = s.dh + (size_t)b * u;
      const float *carried = s.dhn + (size_t)b * u;
      const float *g = dy + (c->return_sequences ? ((size_t)b * T + step_time(c, t)) * out.width
                                                 : (size_t)b * out.width) +
                       out.offset;
      for (int j = 0; j < u; j++) dh[j] = carried[j] + (has_dy ? g[j] : 0.0f);
    }
    float *dar = s.dar + t * BG;
    for (int b = 0; b < B; b++) {
      const size_t g = t * BG + (size_t)b * G, o = (size_t)b * u;
      switch (c->kind) {
        case DT_RNN_SIMPLE:
          simple_row_back(u, s.h + (t + 1) * BU + o, s.dh + o, s.da + g, gb);
          break;
        case DT_RNN_LSTM: {
          const float *a = s.a + g;
          float *d = s.da + g;
          lstm_row_back(u, a, a + u, a + 2 * u, a + 3 * u, s.cs + t * BU + o, s.tc + t * BU + o,
                        s.dh + o, s.dc + o, d, d + u, d + 2 * u, d + 3 * u, gb, gb + u,
                        gb + 2 * u, gb + 3 * u);
          break;
        }
        case DT_RNN_GRU: {
          const float *a = s.a + g;
          float *x = s.da + g, *q = s.dar + g, *bq = gb + G;
          gru_row_back(u, a, a + u, a + 2 * u, s.rh + t * BU + o, s.h + t * BU + o, s.dh + o, x,
                       x + u, x + 2 * u, q, q + u, q + 2 * u, gb, gb + u, gb + 2 * u, bq,
                       bq + u, bq + 2 * u, s.dhn + o);
          break;
        }
      }
    }
    /* dL/dh_{t-1} through the recurrent kernel (added to the GRU's direct path z dh
     * already in dhn); h_0 is a constant. */
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, u, G, 1.0f, dar, G, R, G,
                  c->kind == DT_RNN_GRU ? 1.0f : 0.0f, s.dhn, u);
  }

  /* Parameter gradients over all steps at once. */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, G, (int)rows, 1.0f, s.xt, F, s.da, G,
              0.0f, gK, G);
  /* dR = sum over t >= 1 of h_{t-1}^T dar_t (h_0 = 0 adds nothing). */
  if (T > 1)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, G, (int)(rows - B), 1.0f, s.h + BU, u,
                s.dar + BG, G, 0.0f, gR, G);
  else
    memset(gR, 0, sizeof(float) * u * G);

  if (!dx) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, F, G, 1.0f, s.da, G, K, G, 0.0f,
              s.dxt, F);
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++)
      put(dx + ((size_t)b * T + step_time(c, t)) * F, s.dxt + ((size_t)t * B + b) * F, (size_t)F,
          dx_accumulate);
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

void dt_rnn_cell_init(const dt_rnn_cell_t *c, dt_layer_t *l, dt_rng_t *rng) {
  if (c->orthogonal) orthogonal(l->w[c->param0 + 1], c->units, c->gates * c->units, rng);
  if (c->forget_bias)
    for (int j = 0; j < c->units; j++) l->w[c->param0 + 2][c->units + j] = 1.0f;
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

size_t dt_rnn_layer_scratch_floats(const dt_layer_t *l, int batch) {
  return dt_rnn_cell_scratch_floats(l->priv, batch);
}

void dt_rnn_layer_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x,
                          float *y) {
  (void)ctx;
  const dt_rnn_cell_t *c = l->priv;
  dt_rnn_cell_forward(c, l, l->scratch, batch, x, y, (dt_rnn_out_t){c->units, 0, false});
}

void dt_rnn_layer_backward(dt_layer_t *l, int batch, const float *x, const float *y,
                           const float *dy, float *dx) {
  (void)x; /* forward kept its time-major copy in scratch */
  (void)y;
  const dt_rnn_cell_t *c = l->priv;
  dt_rnn_cell_backward(c, l, l->scratch, batch, dy, (dt_rnn_out_t){c->units, 0, false}, dx,
                       false);
}

void dt_rnn_layer_init(dt_layer_t *l, dt_rng_t *rng) { dt_rnn_cell_init(l->priv, l, rng); }
