/* The CPU backend's recurrent-cell kernels: one time step of the SimpleRNN, LSTM and
 * GRU cells for a batch of rows (the gate non-linearities and the state update, and
 * their backward), and the moves of sequences between batch-major and time-major
 * layouts. The cells, their equations and the GEMMs between the steps are in
 * nn/layers/recurrent.c.
 *
 * The sigmoid and tanh of the gates use exp_split below, which GCC vectorizes (libm's
 * expf is a call per element, and the gate non-linearities would otherwise cost about
 * as much as the GEMMs). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
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

/* ---- layout kernels ---- */

/* The sample's time step that processing step t of `steps` reads. */
static inline int step_time(int steps, bool reverse, int t) { return reverse ? steps - 1 - t : t; }

/* dst (=|+=) src over n floats. */
static inline void put(float *dst, const float *src, size_t n, bool accumulate) {
  if (accumulate)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
  else
    memcpy(dst, src, n * sizeof(float));
}

/* ---- launchers ---- */

void dt_cpu_seq_gather(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                       const float *src, int width, int offset, float *dst) {
  (void)s;
  for (int t = 0; t < steps; t++)
    for (int b = 0; b < batch; b++)
      memcpy(dst + ((size_t)t * batch + b) * n,
             src + ((size_t)b * steps + step_time(steps, reverse, t)) * width + offset,
             sizeof(float) * n);
}

void dt_cpu_seq_scatter(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                        const float *src, float *dst, int width, int offset, bool accumulate) {
  (void)s;
  for (int t = 0; t < steps; t++)
    for (int b = 0; b < batch; b++)
      put(dst + ((size_t)b * steps + step_time(steps, reverse, t)) * width + offset,
          src + ((size_t)t * batch + b) * n, (size_t)n, accumulate);
}

static int gates(dt_rnn_kind kind) {
  return kind == DT_RNN_LSTM ? 4 : kind == DT_RNN_GRU ? 3 : 1;
}

void dt_cpu_rnn_step_forward(dt_stream_t *s, const dt_rnn_step_t *p) {
  (void)s;
  const int u = p->units, G = gates(p->kind) * u;
  for (int b = 0; b < p->batch; b++) {
    float *ab = p->a + (size_t)b * G;
    const size_t o = (size_t)b * u;
    switch (p->kind) {
      case DT_RNN_SIMPLE:
        simple_row(u, ab, p->bias, p->h_next + o);
        break;
      case DT_RNN_LSTM:
        lstm_row(u, ab, p->bias, p->c_prev + o, p->c_next + o, p->tanh_c + o, p->h_next + o);
        break;
      case DT_RNN_GRU:
        gru_row(u, ab, p->rp + (size_t)b * G, p->bias, p->h_prev + o, p->h_next + o, p->rh + o);
        break;
    }
  }
}

void dt_cpu_rnn_step_backward(dt_stream_t *s, const dt_rnn_step_back_t *p) {
  (void)s;
  const int u = p->units, G = gates(p->kind) * u;
  /* dL/dh_t: what the step after sent back plus this step's output gradient. */
  for (int b = 0; b < p->batch; b++) {
    float *dh = p->dh + (size_t)b * u;
    const float *carried = p->dh_carry + (size_t)b * u;
    const float *g = p->dy ? p->dy + (size_t)b * p->dy_stride : NULL;
    for (int j = 0; j < u; j++) dh[j] = carried[j] + (g ? g[j] : 0.0f);
  }
  float *gb = p->dbias;
  for (int b = 0; b < p->batch; b++) {
    const size_t g = (size_t)b * G, o = (size_t)b * u;
    switch (p->kind) {
      case DT_RNN_SIMPLE:
        simple_row_back(u, p->h_next + o, p->dh + o, p->da + g, gb);
        break;
      case DT_RNN_LSTM: {
        const float *a = p->a + g;
        float *d = p->da + g;
        lstm_row_back(u, a, a + u, a + 2 * u, a + 3 * u, p->c_prev + o, p->tanh_c + o, p->dh + o,
                      p->dc + o, d, d + u, d + 2 * u, d + 3 * u, gb, gb + u, gb + 2 * u,
                      gb + 3 * u);
        break;
      }
      case DT_RNN_GRU: {
        const float *a = p->a + g;
        float *x = p->da + g, *q = p->dar + g, *bq = gb + G;
        gru_row_back(u, a, a + u, a + 2 * u, p->rh + o, p->h_prev + o, p->dh + o, x, x + u,
                     x + 2 * u, q, q + u, q + 2 * u, gb, gb + u, gb + 2 * u, bq, bq + u,
                     bq + 2 * u, p->dh_carry + o);
        break;
      }
    }
  }
}
