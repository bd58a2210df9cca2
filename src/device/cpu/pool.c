/* The CPU backend's pooling: 2-d max and average pooling over windows (padded
 * positions take no part: a max ignores them and an average divides by the number of
 * real positions in its window, TensorFlow's rule), and the global pools. Max pooling
 * keeps the index of each output's maximum (the first one on ties) so that backward
 * routes the gradient to it. */
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/hot.h"

/* ---- kernels: 2-d windows ---- */

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1), columns [*x0, *x1). */
static void window(const dt_conv_geom_t *g, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
  const int ty = oy * g->sh - g->ph, tx = ox * g->sw - g->pw;
  *y0 = ty < 0 ? 0 : ty;
  *y1 = ty + g->kh < g->ih ? ty + g->kh : g->ih;
  *x0 = tx < 0 ? 0 : tx;
  *x1 = tx + g->kw < g->iw ? tx + g->kw : g->iw;
}

/* The maximum of each channel over one window, and its index into the sample; restrict
 * lets the channel loops vectorize without guarding against overlap. */
static inline void max_window(const dt_conv_geom_t *g, const float *restrict xn, int y0, int y1,
                              int x0, int x1, float *restrict y, int32_t *restrict idx) {
  const int c = g->ic;
  int32_t base = (int32_t)(((size_t)y0 * g->iw + x0) * c);
  for (int j = 0; j < c; j++) {
    y[j] = xn[base + j];
    idx[j] = base + j;
  }
  for (int iy = y0; iy < y1; iy++)
    for (int ix = iy == y0 ? x0 + 1 : x0; ix < x1; ix++) {
      base = (int32_t)(((size_t)iy * g->iw + ix) * c);
      const float *xi = xn + base;
      /* Selects rather than branches, so that the loop vectorizes; strict > keeps the
       * first maximum. */
      for (int j = 0; j < c; j++) {
        const bool gt = xi[j] > y[j];
        y[j] = gt ? xi[j] : y[j];
        idx[j] = gt ? base + j : idx[j];
      }
    }
}

DT_HOT_LOOP static void max_forward(const dt_conv_geom_t *g, int batch, const float *x, float *y,
                                    int32_t *idx) {
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  for (int n = 0; n < batch; n++) {
    const float *xn = x + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, y += c, idx += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        max_window(g, xn, y0, y1, x0, x1, y, idx);
      }
  }
}

/* True when the windows cover the image exactly once (stride = pool size, no padding,
 * no leftover rows or columns), so that backward can write every dx value directly. */
static bool tiles_exactly(const dt_conv_geom_t *g) {
  return g->sh == g->kh && g->sw == g->kw && g->oh * g->kh == g->ih && g->ow * g->kw == g->iw &&
         g->ph == 0 && g->pw == 0;
}

DT_HOT_LOOP static void max_backward(const dt_conv_geom_t *g, int batch, const float *dy,
                                     float *dx, const int32_t *idx) {
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c, out_size = (size_t)g->oh * g->ow * c;
  if (tiles_exactly(g)) {
    /* Each input value belongs to one window: it gets that window's gradient if it was
     * the maximum, else zero. */
    for (int n = 0; n < batch; n++) {
      float *dxn = dx + (size_t)n * in_size;
      for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++, dy += c, idx += c)
          for (int iy = oy * g->kh; iy < (oy + 1) * g->kh; iy++)
            for (int ix = ox * g->kw; ix < (ox + 1) * g->kw; ix++) {
              const int32_t base = (int32_t)(((size_t)iy * g->iw + ix) * c);
              float *d = dxn + base;
              for (int j = 0; j < c; j++) d[j] = idx[j] == base + j ? dy[j] : 0.0f;
            }
    }
    return;
  }
  memset(dx, 0, sizeof(float) * (size_t)batch * in_size);
  for (int n = 0; n < batch; n++) {
    float *dxn = dx + (size_t)n * in_size;
    const float *dyn = dy + (size_t)n * out_size;
    const int32_t *in = idx + (size_t)n * out_size;
    for (size_t o = 0; o < out_size; o++) dxn[in[o]] += dyn[o];
  }
}

DT_HOT_LOOP static void avg_forward(const dt_conv_geom_t *g, int batch, const float *x,
                                    float *y) {
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  for (int n = 0; n < batch; n++) {
    const float *xn = x + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, y += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        memset(y, 0, sizeof(float) * (size_t)c);
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) {
            const float *xi = xn + ((size_t)iy * g->iw + ix) * c;
            for (int j = 0; j < c; j++) y[j] += xi[j];
          }
        const float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
        for (int j = 0; j < c; j++) y[j] *= scale;
      }
  }
}

DT_HOT_LOOP static void avg_backward(const dt_conv_geom_t *g, int batch, const float *dy,
                                     float *dx) {
  const int c = g->ic;
  const size_t in_size = (size_t)g->ih * g->iw * c;
  memset(dx, 0, sizeof(float) * (size_t)batch * in_size);
  for (int n = 0; n < batch; n++) {
    float *dxn = dx + (size_t)n * in_size;
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++, dy += c) {
        int y0, y1, x0, x1;
        window(g, oy, ox, &y0, &y1, &x0, &x1);
        const float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) {
            float *di = dxn + ((size_t)iy * g->iw + ix) * c;
            for (int j = 0; j < c; j++) di[j] += dy[j] * scale;
          }
      }
  }
}

/* ---- kernels: global pools over p positions of c channels ---- */

DT_HOT_LOOP static void global_avg_forward(int batch, size_t p, int c, const float *x,
                                           float *y) {
  const float scale = 1.0f / (float)p;
  for (int n = 0; n < batch; n++, y += c) {
    memset(y, 0, sizeof(float) * (size_t)c);
    for (size_t i = 0; i < p; i++, x += c)
      for (int j = 0; j < c; j++) y[j] += x[j];
    for (int j = 0; j < c; j++) y[j] *= scale;
  }
}

DT_HOT_LOOP static void global_avg_backward(int batch, size_t p, int c, const float *dy,
                                            float *dx) {
  const float scale = 1.0f / (float)p;
  for (int n = 0; n < batch; n++, dy += c)
    for (size_t i = 0; i < p; i++, dx += c)
      for (int j = 0; j < c; j++) dx[j] = dy[j] * scale;
}

DT_HOT_LOOP static void global_max_forward(int batch, size_t p, int c, const float *x, float *y,
                                           int32_t *idx) {
  for (int n = 0; n < batch; n++, y += c, idx += c) {
    memcpy(y, x, sizeof(float) * (size_t)c);
    memset(idx, 0, sizeof(int32_t) * (size_t)c);
    x += c;
    for (size_t i = 1; i < p; i++, x += c)
      for (int j = 0; j < c; j++) {
        const bool gt = x[j] > y[j];
        y[j] = gt ? x[j] : y[j];
        idx[j] = gt ? (int32_t)i : idx[j];
      }
  }
}

static void global_max_backward(int batch, size_t p, int c, const float *dy, float *dx,
                                const int32_t *idx) {
  memset(dx, 0, sizeof(float) * (size_t)batch * p * c);
  for (int n = 0; n < batch; n++, dy += c, idx += c, dx += p * c)
    for (int j = 0; j < c; j++) dx[(size_t)idx[j] * c + j] = dy[j];
}

/* ---- launchers ----
 *
 * Samples are independent in every pool, forward and backward, so the batch is shared
 * out by ranges of samples: the same values whatever the thread count. */

typedef struct {
  dt_pool_kind kind;
  const dt_conv_geom_t *g;
  size_t positions;
  int channels;
  size_t in_size, out_size; /* values per sample */
  const float *src;
  float *dst;
  int32_t *idx;
  const int32_t *cidx;
} pool_job_t;

static void pool2d_forward_range(void *p, size_t b, size_t e) {
  const pool_job_t *j = p;
  const float *x = j->src + b * j->in_size;
  float *y = j->dst + b * j->out_size;
  if (j->kind == DT_POOL_MAX)
    max_forward(j->g, (int)(e - b), x, y, j->idx + b * j->out_size);
  else
    avg_forward(j->g, (int)(e - b), x, y);
}

static void pool2d_backward_range(void *p, size_t b, size_t e) {
  const pool_job_t *j = p;
  const float *dy = j->src + b * j->out_size;
  float *dx = j->dst + b * j->in_size;
  if (j->kind == DT_POOL_MAX)
    max_backward(j->g, (int)(e - b), dy, dx, j->cidx + b * j->out_size);
  else
    avg_backward(j->g, (int)(e - b), dy, dx);
}

/* Samples per chunk: at least a cheap grain of input values. */
static size_t sample_grain(size_t in_size) {
  return in_size >= DT_CPU_GRAIN_CHEAP ? 1 : DT_CPU_GRAIN_CHEAP / (in_size ? in_size : 1);
}

void dt_cpu_pool2d_forward(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g,
                           int batch, const float *x, float *y, int32_t *idx) {
  pool_job_t j = {.kind = kind, .g = g, .src = x, .dst = y, .idx = idx,
                  .in_size = (size_t)g->ih * g->iw * g->ic,
                  .out_size = (size_t)g->oh * g->ow * g->ic};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)batch, sample_grain(j.in_size), 1,
                  pool2d_forward_range, &j);
}

void dt_cpu_pool2d_backward(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g,
                            int batch, const float *dy, float *dx, const int32_t *idx) {
  pool_job_t j = {.kind = kind, .g = g, .src = dy, .dst = dx, .cidx = idx,
                  .in_size = (size_t)g->ih * g->iw * g->ic,
                  .out_size = (size_t)g->oh * g->ow * g->ic};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)batch, sample_grain(j.in_size), 1,
                  pool2d_backward_range, &j);
}

static void global_forward_range(void *p, size_t b, size_t e) {
  const pool_job_t *j = p;
  const size_t c = (size_t)j->channels, in = j->positions * c;
  if (j->kind == DT_POOL_MAX)
    global_max_forward((int)(e - b), j->positions, j->channels, j->src + b * in, j->dst + b * c,
                       j->idx + b * c);
  else
    global_avg_forward((int)(e - b), j->positions, j->channels, j->src + b * in, j->dst + b * c);
}

static void global_backward_range(void *p, size_t b, size_t e) {
  const pool_job_t *j = p;
  const size_t c = (size_t)j->channels, in = j->positions * c;
  if (j->kind == DT_POOL_MAX)
    global_max_backward((int)(e - b), j->positions, j->channels, j->src + b * c,
                        j->dst + b * in, j->cidx + b * c);
  else
    global_avg_backward((int)(e - b), j->positions, j->channels, j->src + b * c,
                        j->dst + b * in);
}

void dt_cpu_global_pool_forward(dt_stream_t *s, dt_pool_kind kind, int batch, size_t positions,
                                int channels, const float *x, float *y, int32_t *idx) {
  pool_job_t j = {.kind = kind, .positions = positions, .channels = channels, .src = x,
                  .dst = y, .idx = idx};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)batch, sample_grain(positions * (size_t)channels), 1,
                  global_forward_range, &j);
}

void dt_cpu_global_pool_backward(dt_stream_t *s, dt_pool_kind kind, int batch,
                                 size_t positions, int channels, const float *dy, float *dx,
                                 const int32_t *idx) {
  pool_job_t j = {.kind = kind, .positions = positions, .channels = channels, .src = dy,
                  .dst = dx, .cidx = idx};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)batch, sample_grain(positions * (size_t)channels), 1,
                  global_backward_range, &j);
}
