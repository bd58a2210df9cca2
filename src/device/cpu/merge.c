/* The CPU backend's kernels for graph models: the element-wise merges of several
 * inputs (add, subtract, multiply, average, maximum) with their gradients, the strided
 * row copy that concatenation is made of, and nearest upsampling and zero padding of
 * images. Each is split over the compute pool by ranges of values, rows or images, so
 * that results do not depend on the thread count. */
#include <string.h>

#include "cpu.h"

/* ---- element-wise merges ---- */

typedef struct {
  dt_merge_kind kind;
  int k;
  const float *const *xs;
  const float *y, *dy;
  float *out;
  float *const *dxs;
} merge_job_t;

static void merge_forward_range(void *p, size_t b, size_t e) {
  const merge_job_t *j = p;
  const float *x0 = j->xs[0];
  float *y = j->out;
  switch (j->kind) {
    case DT_MERGE_SUBTRACT:
      for (size_t i = b; i < e; i++) y[i] = x0[i] - j->xs[1][i];
      return;
    case DT_MERGE_ADD:
    case DT_MERGE_AVERAGE: {
      /* Left to right, as Keras adds its inputs; y may be x0. */
      for (size_t i = b; i < e; i++) {
        float acc = x0[i];
        for (int k = 1; k < j->k; k++) acc += j->xs[k][i];
        y[i] = j->kind == DT_MERGE_AVERAGE ? acc / (float)j->k : acc;
      }
      return;
    }
    case DT_MERGE_MULTIPLY:
      for (size_t i = b; i < e; i++) {
        float acc = x0[i];
        for (int k = 1; k < j->k; k++) acc *= j->xs[k][i];
        y[i] = acc;
      }
      return;
    case DT_MERGE_MAXIMUM:
      for (size_t i = b; i < e; i++) {
        float acc = x0[i];
        for (int k = 1; k < j->k; k++) acc = j->xs[k][i] > acc ? j->xs[k][i] : acc;
        y[i] = acc;
      }
      return;
  }
}

static void merge_backward_range(void *p, size_t b, size_t e) {
  const merge_job_t *j = p;
  const float *dy = j->dy;
  for (int k = 0; k < j->k; k++) {
    float *dx = j->dxs[k];
    if (!dx) continue;
    switch (j->kind) {
      case DT_MERGE_ADD:
        memcpy(dx + b, dy + b, (e - b) * sizeof(float));
        break;
      case DT_MERGE_SUBTRACT:
        for (size_t i = b; i < e; i++) dx[i] = k == 0 ? dy[i] : -dy[i];
        break;
      case DT_MERGE_AVERAGE:
        for (size_t i = b; i < e; i++) dx[i] = dy[i] / (float)j->k;
        break;
      case DT_MERGE_MULTIPLY:
        /* The product of the other inputs, not y / x_k: exact where x_k is zero. */
        for (size_t i = b; i < e; i++) {
          float acc = dy[i];
          for (int o = 0; o < j->k; o++)
            if (o != k) acc *= j->xs[o][i];
          dx[i] = acc;
        }
        break;
      case DT_MERGE_MAXIMUM:
        /* The first input equal to the maximum takes the whole gradient. */
        for (size_t i = b; i < e; i++) {
          int first = 0;
          while (first < j->k - 1 && j->xs[first][i] != j->y[i]) first++;
          dx[i] = first == k ? dy[i] : 0.0f;
        }
        break;
    }
  }
}

void dt_cpu_merge_forward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                          const float *const *xs, float *y) {
  merge_job_t j = {.kind = kind, .k = k, .xs = xs, .out = y};
  dt_cpu_pool_for(dt_cpu_pool_of(s), n, DT_CPU_GRAIN_CHEAP, DT_CPU_ALIGN_FLOATS,
                  merge_forward_range, &j);
}

void dt_cpu_merge_backward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                           const float *const *xs, const float *y, const float *dy,
                           float *const *dxs) {
  merge_job_t j = {.kind = kind, .k = k, .xs = xs, .y = y, .dy = dy, .dxs = dxs};
  dt_cpu_pool_for(dt_cpu_pool_of(s), n, DT_CPU_GRAIN_CHEAP, DT_CPU_ALIGN_FLOATS,
                  merge_backward_range, &j);
}

/* ---- strided rows ---- */

typedef struct {
  size_t width, src_ld, dst_ld;
  const float *src;
  float *dst;
} rows_job_t;

static void copy_rows_range(void *p, size_t b, size_t e) {
  const rows_job_t *j = p;
  for (size_t r = b; r < e; r++)
    memcpy(j->dst + r * j->dst_ld, j->src + r * j->src_ld, j->width * sizeof(float));
}

void dt_cpu_copy_rows(dt_stream_t *s, size_t rows, size_t width, const float *src, size_t src_ld,
                      float *dst, size_t dst_ld) {
  rows_job_t j = {.width = width, .src_ld = src_ld, .dst_ld = dst_ld, .src = src, .dst = dst};
  size_t grain = DT_CPU_GRAIN_CHEAP / (width ? width : 1);
  dt_cpu_pool_for(dt_cpu_pool_of(s), rows, grain ? grain : 1, 1, copy_rows_range, &j);
}

/* ---- upsampling and padding, by images ---- */

typedef struct {
  const dt_resize2d_t *r;
  const float *x;
  float *y;
} image_job_t;

/* Images per chunk: at least a cheap grain of values. */
static size_t image_grain(size_t per_image) {
  size_t g = DT_CPU_GRAIN_CHEAP / (per_image ? per_image : 1);
  return g ? g : 1;
}

static void upsample_forward_images(void *p, size_t b, size_t e) {
  const image_job_t *j = p;
  const dt_resize2d_t *r = j->r;
  const size_t c = (size_t)r->c, oh = (size_t)r->h * r->sh, ow = (size_t)r->w * r->sw;
  for (size_t n = b; n < e; n++) {
    const float *x = j->x + n * r->h * r->w * c;
    float *y = j->y + n * oh * ow * c;
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox = 0; ox < ow; ox++)
        memcpy(y + (oy * ow + ox) * c, x + ((oy / r->sh) * r->w + ox / r->sw) * c,
               c * sizeof(float));
  }
}

static void upsample_backward_images(void *p, size_t b, size_t e) {
  const image_job_t *j = p;
  const dt_resize2d_t *r = j->r;
  const size_t c = (size_t)r->c, oh = (size_t)r->h * r->sh, ow = (size_t)r->w * r->sw;
  for (size_t n = b; n < e; n++) {
    const float *dy = j->x + n * oh * ow * c;
    float *dx = j->y + n * r->h * r->w * c;
    memset(dx, 0, (size_t)r->h * r->w * c * sizeof(float));
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox = 0; ox < ow; ox++) {
        float *d = dx + ((oy / r->sh) * r->w + ox / r->sw) * c;
        const float *g = dy + (oy * ow + ox) * c;
        for (size_t ch = 0; ch < c; ch++) d[ch] += g[ch];
      }
  }
}

static void pad_forward_images(void *p, size_t b, size_t e) {
  const image_job_t *j = p;
  const dt_resize2d_t *r = j->r;
  const size_t c = (size_t)r->c, oh = (size_t)(r->top + r->h + r->bottom),
               ow = (size_t)(r->left + r->w + r->right);
  for (size_t n = b; n < e; n++) {
    const float *x = j->x + n * r->h * r->w * c;
    float *y = j->y + n * oh * ow * c;
    memset(y, 0, oh * ow * c * sizeof(float));
    for (int iy = 0; iy < r->h; iy++)
      memcpy(y + (((size_t)iy + r->top) * ow + r->left) * c, x + (size_t)iy * r->w * c,
             (size_t)r->w * c * sizeof(float));
  }
}

static void pad_backward_images(void *p, size_t b, size_t e) {
  const image_job_t *j = p;
  const dt_resize2d_t *r = j->r;
  const size_t c = (size_t)r->c, oh = (size_t)(r->top + r->h + r->bottom),
               ow = (size_t)(r->left + r->w + r->right);
  for (size_t n = b; n < e; n++) {
    const float *dy = j->x + n * oh * ow * c;
    float *dx = j->y + n * r->h * r->w * c;
    for (int iy = 0; iy < r->h; iy++)
      memcpy(dx + (size_t)iy * r->w * c, dy + (((size_t)iy + r->top) * ow + r->left) * c,
             (size_t)r->w * c * sizeof(float));
  }
}

static void for_images(dt_stream_t *s, const dt_resize2d_t *r, int batch, size_t per_image,
                       dt_range_fn fn, const float *in, float *out) {
  image_job_t j = {.r = r, .x = in, .y = out};
  dt_cpu_pool_for(dt_cpu_pool_of(s), (size_t)batch, image_grain(per_image), 1, fn, &j);
}

void dt_cpu_upsample2d_forward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                               float *y) {
  for_images(s, r, batch, (size_t)r->h * r->sh * r->w * r->sw * r->c, upsample_forward_images, x,
             y);
}

void dt_cpu_upsample2d_backward(dt_stream_t *s, const dt_resize2d_t *r, int batch,
                                const float *dy, float *dx) {
  for_images(s, r, batch, (size_t)r->h * r->sh * r->w * r->sw * r->c, upsample_backward_images,
             dy, dx);
}

void dt_cpu_pad2d_forward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                          float *y) {
  for_images(s, r, batch,
             (size_t)(r->top + r->h + r->bottom) * (r->left + r->w + r->right) * r->c,
             pad_forward_images, x, y);
}

void dt_cpu_pad2d_backward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *dy,
                           float *dx) {
  for_images(s, r, batch, (size_t)r->h * r->w * r->c, pad_backward_images, dy, dx);
}
