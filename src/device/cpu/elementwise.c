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

/* ---- launchers ----
 *
 * Each launcher hands contiguous ranges of its elements (or rows) to the pool; every
 * element is computed by the same code whichever thread runs it, so the results do not
 * depend on the thread count. */

typedef struct {
  dt_activation kind;
  float alpha;
  const float *x, *y, *dy;
  float *out;
} act_job_t;

static void act_forward_range(void *p, size_t b, size_t e) {
  const act_job_t *j = p;
  const size_t n = e - b;
  const float *x = j->x + b;
  float *y = j->out + b;
  switch (j->kind) {
    case DT_ACT_RELU:
      relu_forward(n, x, y);
      return;
    case DT_ACT_LEAKY_RELU:
      leaky_relu_forward(n, j->alpha, x, y);
      return;
    case DT_ACT_SIGMOID:
      sigmoid_forward(n, x, y);
      return;
    case DT_ACT_TANH:
      tanh_forward(n, x, y);
      return;
  }
}

static void act_backward_range(void *p, size_t b, size_t e) {
  const act_job_t *j = p;
  const size_t n = e - b;
  const float *dy = j->dy + b;
  float *dx = j->out + b;
  switch (j->kind) {
    case DT_ACT_RELU:
      relu_backward(n, j->y + b, dy, dx);
      return;
    case DT_ACT_LEAKY_RELU:
      leaky_relu_backward(n, j->alpha, j->x + b, dy, dx);
      return;
    case DT_ACT_SIGMOID:
      sigmoid_backward(n, j->y + b, dy, dx);
      return;
    case DT_ACT_TANH:
      tanh_backward(n, j->y + b, dy, dx);
      return;
  }
}

static size_t act_grain(dt_activation kind, bool backward) {
  return kind == DT_ACT_RELU || kind == DT_ACT_LEAKY_RELU || backward ? DT_CPU_GRAIN_CHEAP
                                                                      : DT_CPU_GRAIN_MATH;
}

void dt_cpu_activation_forward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                               const float *x, float *y) {
  act_job_t j = {.kind = kind, .alpha = alpha, .x = x, .out = y};
  dt_cpu_pool_for(dt_cpu_pool_of(s), n, act_grain(kind, false), DT_CPU_ALIGN_FLOATS,
                  act_forward_range, &j);
}

void dt_cpu_activation_backward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                                const float *x, const float *y, const float *dy, float *dx) {
  act_job_t j = {.kind = kind, .alpha = alpha, .x = x, .y = y, .dy = dy, .out = dx};
  dt_cpu_pool_for(dt_cpu_pool_of(s), n, act_grain(kind, true), DT_CPU_ALIGN_FLOATS,
                  act_backward_range, &j);
}

typedef struct {
  size_t dim;
  const float *x, *y, *dy;
  float *out;
} softmax_job_t;

static void softmax_forward_rows(void *p, size_t b, size_t e) {
  const softmax_job_t *j = p;
  softmax_forward((int)(e - b), j->dim, j->x + b * j->dim, j->out + b * j->dim);
}

static void softmax_backward_rows(void *p, size_t b, size_t e) {
  const softmax_job_t *j = p;
  softmax_backward((int)(e - b), j->dim, j->y + b * j->dim, j->dy + b * j->dim,
                   j->out + b * j->dim);
}

/* Rows per chunk: at least a transcendental grain of values. */
static size_t row_grain(size_t dim) {
  return dim >= DT_CPU_GRAIN_MATH ? 1 : DT_CPU_GRAIN_MATH / (dim ? dim : 1);
}

void dt_cpu_softmax_forward(dt_stream_t *s, int rows, size_t dim, const float *x, float *y) {
  softmax_job_t j = {.dim = dim, .x = x, .out = y};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)rows, row_grain(dim), 1, softmax_forward_rows, &j);
}

void dt_cpu_softmax_backward(dt_stream_t *s, int rows, size_t dim, const float *y,
                             const float *dy, float *dx) {
  softmax_job_t j = {.dim = dim, .y = y, .dy = dy, .out = dx};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)rows, row_grain(dim), 1, softmax_backward_rows, &j);
}

/* The mask is drawn from one generator in order, so dropout stays on one thread. */
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

/* Rows of dtable gather from anywhere in dy: one thread, in the order of dy. */
void dt_cpu_embedding_backward(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                               const float *dy, float *dtable) {
  (void)s;
  embedding_backward(n, rows, dim, ids, dy, dtable);
}
