/* The CPU backend's element-wise and row-wise layer kernels: activations, softmax,
 * dropout and the embedding lookup. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/hot.h"

/* ---- kernels ---- */

DT_HOT_LOOP static void relu_forward(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

DT_HOT_LOOP static void relu_backward(size_t n, const float *y, const float *dy, float *dx) {
  for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static void leaky_relu_forward(size_t n, float alpha, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
}

static void leaky_relu_backward(size_t n, float alpha, const float *x, const float *dy,
                                float *dx) {
  for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
}

/* Computed without overflow for large |x|. */
static void sigmoid_forward(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    float e = expf(-fabsf(x[i])); /* in (0, 1]: never overflows */
    y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
}

static void sigmoid_backward(size_t n, const float *y, const float *dy, float *dx) {
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static void tanh_forward(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

static void tanh_backward(size_t n, const float *y, const float *dy, float *dx) {
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

static void softmax_forward(int rows, size_t dim, const float *x, float *y) {
  for (int b = 0; b < rows; b++) {
    const float *xr = x + (size_t)b * dim;
    float *yr = y + (size_t)b * dim;
    float mx = xr[0];
    for (size_t i = 1; i < dim; i++) mx = xr[i] > mx ? xr[i] : mx;
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += (yr[i] = expf(xr[i] - mx));
    float inv = 1.0f / sum;
    for (size_t i = 0; i < dim; i++) yr[i] *= inv;
  }
}

/* dx_i = y_i (dy_i - sum_j dy_j y_j) */
static void softmax_backward(int rows, size_t dim, const float *y, const float *dy, float *dx) {
  for (int b = 0; b < rows; b++) {
    const float *yr = y + (size_t)b * dim, *dyr = dy + (size_t)b * dim;
    float *dxr = dx + (size_t)b * dim;
    float dot = 0.0f;
    for (size_t i = 0; i < dim; i++) dot += dyr[i] * yr[i];
    for (size_t i = 0; i < dim; i++) dxr[i] = yr[i] * (dyr[i] - dot);
  }
}

static void dropout_forward(size_t n, float rate, dt_rng_t *rng, const float *x, float *y,
                            float *mask) {
  const float keep_scale = 1.0f / (1.0f - rate);
  for (size_t i = 0; i < n; i++) {
    mask[i] = dt_rng_uniform(rng) >= rate ? keep_scale : 0.0f;
    y[i] = x[i] * mask[i];
  }
}

/* The row of id value v, or -1 when v is not an id of a table of `rows` rows. */
static inline int row_of(int rows, float v) { return v >= 0.0f && v < (float)rows ? (int)v : -1; }

static void embedding_forward(size_t n, int rows, size_t dim, const float *ids,
                              const float *table, float *y) {
  for (size_t k = 0; k < n; k++) {
    const int r = row_of(rows, ids[k]);
    if (r >= 0)
      memcpy(y + k * dim, table + (size_t)r * dim, dim * sizeof(float));
    else
      memset(y + k * dim, 0, dim * sizeof(float));
  }
}

static void embedding_backward(size_t n, int rows, size_t dim, const float *ids, const float *dy,
                               float *g) {
  memset(g, 0, (size_t)rows * dim * sizeof(float));
  for (size_t k = 0; k < n; k++) {
    const int r = row_of(rows, ids[k]);
    if (r < 0) continue;
    float *gr = g + (size_t)r * dim;
    const float *d = dy + k * dim;
    for (size_t j = 0; j < dim; j++) gr[j] += d[j];
  }
}

/* ---- launchers ---- */

void dt_cpu_activation_forward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                               const float *x, float *y) {
  (void)s;
  switch (kind) {
    case DT_ACT_RELU:
      relu_forward(n, x, y);
      return;
    case DT_ACT_LEAKY_RELU:
      leaky_relu_forward(n, alpha, x, y);
      return;
    case DT_ACT_SIGMOID:
      sigmoid_forward(n, x, y);
      return;
    case DT_ACT_TANH:
      tanh_forward(n, x, y);
      return;
  }
}

void dt_cpu_activation_backward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                                const float *x, const float *y, const float *dy, float *dx) {
  (void)s;
  switch (kind) {
    case DT_ACT_RELU:
      relu_backward(n, y, dy, dx);
      return;
    case DT_ACT_LEAKY_RELU:
      leaky_relu_backward(n, alpha, x, dy, dx);
      return;
    case DT_ACT_SIGMOID:
      sigmoid_backward(n, y, dy, dx);
      return;
    case DT_ACT_TANH:
      tanh_backward(n, y, dy, dx);
      return;
  }
}

void dt_cpu_softmax_forward(dt_stream_t *s, int rows, size_t dim, const float *x, float *y) {
  (void)s;
  softmax_forward(rows, dim, x, y);
}

void dt_cpu_softmax_backward(dt_stream_t *s, int rows, size_t dim, const float *y,
                             const float *dy, float *dx) {
  (void)s;
  softmax_backward(rows, dim, y, dy, dx);
}

void dt_cpu_dropout_forward(dt_stream_t *s, size_t n, float rate, dt_rng_t *rng, const float *x,
                            float *y, float *mask) {
  (void)s;
  dropout_forward(n, rate, rng, x, y, mask);
}

void dt_cpu_embedding_forward(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                              const float *table, float *y) {
  (void)s;
  embedding_forward(n, rows, dim, ids, table, y);
}

void dt_cpu_embedding_backward(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                               const float *dy, float *dtable) {
  (void)s;
  embedding_backward(n, rows, dim, ids, dy, dtable);
}
