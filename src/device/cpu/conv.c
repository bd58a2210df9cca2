/* The CPU backend's convolution: im2col / col2im over channels-last batches in
 * cache-sized chunks of the column matrix, and the GEMMs on them, which run on our
 * AVX-512 kernels where they can and on OpenBLAS otherwise.
 *
 * Data are channels-last, so one output position of a convolution reads kh * kw
 * vectors of `ic` contiguous channels. im2col lays them side by side: row r of the
 * column matrix is output position r of the batch (batch-major, then row, then column)
 * and holds kh * kw * ic values in the order of a Keras kernel's first three axes, so
 * the convolution is one GEMM (rows, kh*kw*ic) x (kh*kw*ic, filters). The batch is
 * processed in chunks of rows so that the column matrix stays in cache and the
 * workspace it needs does not grow with the batch.
 *
 * With more than one thread (dt_device_set_threads) a convolution whose GEMMs all fit
 * our kernels shares the batch out by ranges of samples, one per pool thread, each
 * with its own column chunks in the workspace: the outputs and dx are the same values
 * as on one thread (every row is computed alike), and each thread's part of dW is
 * added up in thread order afterwards, so dW is bit-identical run to run for a given
 * thread count. Other convolutions (transposed ones, or shapes the kernels do not
 * take) run on the calling thread with OpenBLAS's threads in the GEMMs. */
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/hot.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif

/* Column-matrix floats per chunk: 256 KiB, so that the chunk and a kernel of a few
 * hundred KiB stay in a per-core L2 between im2col and the GEMM. On the Fashion-MNIST
 * CNN, 128 KiB to 1 MiB chunks ran within the noise of each other; the whole batch at
 * once (40 MB of columns for its second convolution) ran OpenBLAS 10-20% slower.
 * Chunks are a multiple of CHUNK_ALIGN rows (the kernels' row tiles) so that only the
 * last one has a tail. */
enum { CHUNK_FLOATS = 1 << 16, CHUNK_ALIGN = 12, MIN_CHUNK_ROWS = 48 };

/* Width of a column-matrix row: kh * kw * ic. */
static size_t conv_cols(const dt_conv_geom_t *g) { return (size_t)g->kh * g->kw * g->ic; }

/* ---- im2col and col2im ---- */

/* The output position of row `row` of the column matrix: sample n, output row oy,
 * output column ox. */
typedef struct {
  size_t n;
  int oy, ox;
} pos_t;

static pos_t pos_of(const dt_conv_geom_t *g, size_t row) {
  const size_t plane = (size_t)g->oh * g->ow;
  const int p = (int)(row % plane);
  return (pos_t){row / plane, p / g->ow, p % g->ow};
}

static void pos_next(const dt_conv_geom_t *g, pos_t *p) {
  if (++p->ox < g->ow) return;
  p->ox = 0;
  if (++p->oy < g->oh) return;
  p->oy = 0;
  p->n++;
}

/* d[0..n) = s[0..n) and d[0..n) = 0 for the short runs of im2col (a kernel row of a
 * few channels is a handful of floats): fixed-size pieces that the compiler inlines,
 * where a call to memcpy/memset per run would cost more than the copy. There is no
 * loop over single floats, which GCC would turn back into a memmove call. */
static inline void copy_run(float *restrict d, const float *restrict s, size_t n) {
  size_t j = 0;
  for (; j + 16 <= n; j += 16) memcpy(d + j, s + j, 16 * sizeof(float));
  if (j + 8 <= n) memcpy(d + j, s + j, 8 * sizeof(float)), j += 8;
  if (j + 4 <= n) memcpy(d + j, s + j, 4 * sizeof(float)), j += 4;
  if (j + 2 <= n) memcpy(d + j, s + j, 2 * sizeof(float)), j += 2;
  if (j < n) d[j] = s[j];
}

static inline void zero_run(float *d, size_t n) {
  static const float zeros[16];
  size_t j = 0;
  for (; j + 16 <= n; j += 16) memcpy(d + j, zeros, 16 * sizeof(float));
  if (j + 8 <= n) memcpy(d + j, zeros, 8 * sizeof(float)), j += 8;
  if (j + 4 <= n) memcpy(d + j, zeros, 4 * sizeof(float)), j += 4;
  if (j + 2 <= n) memcpy(d + j, zeros, 2 * sizeof(float)), j += 2;
  if (j < n) d[j] = 0.0f;
}

/* Rows row0 .. row0 + nrows - 1 of the column matrix of the batch x (batch, ih, iw, ic)
 * into cols (nrows, kh * kw * ic); taps in the padding are zeros. Rows are visited a
 * segment at a time: the output positions of one image row, which share the sample and
 * the input rows they read, so the per-row work is one copy per kernel row. */
DT_HOT_LOOP static void im2col(const dt_conv_geom_t *g, const float *x, size_t row0, int nrows,
                               float *cols) {
  const size_t img = (size_t)g->ih * g->iw * g->ic, line = (size_t)g->iw * g->ic;
  const size_t ic = (size_t)g->ic, span = (size_t)g->kw * ic, kc = g->kh * span;
  pos_t p = pos_of(g, row0);
  for (int i = 0; i < nrows;) {
    const int cnt = g->ow - p.ox < nrows - i ? g->ow - p.ox : nrows - i;
    const float *xn = x + p.n * img;
    float *seg = cols + (size_t)i * kc;
    for (int ky = 0; ky < g->kh; ky++) {
      const int iy = p.oy * g->sh - g->ph + ky * g->dh;
      float *dst = seg + ky * span;
      if (iy < 0 || iy >= g->ih) {
        for (int j = 0; j < cnt; j++) zero_run(dst + j * kc, span);
        continue;
      }
      const float *src = xn + (size_t)iy * line;
      for (int j = 0; j < cnt; j++) {
        float *d = dst + j * kc;
        const int ix0 = (p.ox + j) * g->sw - g->pw;
        /* With no dilation and every column inside the image, a kernel row's taps are
         * one contiguous run of kw * ic floats. */
        if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->iw) {
          copy_run(d, src + (size_t)ix0 * ic, span);
          continue;
        }
        for (int kx = 0; kx < g->kw; kx++) {
          const int ix = ix0 + kx * g->dw;
          if (ix < 0 || ix >= g->iw)
            zero_run(d + kx * ic, ic);
          else
            copy_run(d + kx * ic, src + (size_t)ix * ic, ic);
        }
      }
    }
    i += cnt;
    p.ox += cnt - 1;
    pos_next(g, &p);
  }
}

/* dst[0..n) += src[0..n) */
static inline void add_to(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t j = 0; j < n; j++) dst[j] += src[j];
}

/* The adjoint of im2col: adds every value of cols (nrows, kh * kw * ic) into the input
 * position it was read from, in x (batch, ih, iw, ic); taps in the padding are dropped. */
DT_HOT_LOOP static void col2im_add(const dt_conv_geom_t *g, const float *cols, size_t row0,
                                   int nrows, float *x) {
  const size_t img = (size_t)g->ih * g->iw * g->ic, line = (size_t)g->iw * g->ic;
  const size_t ic = (size_t)g->ic, span = (size_t)g->kw * ic, kc = g->kh * span;
  pos_t p = pos_of(g, row0);
  for (int i = 0; i < nrows;) {
    const int cnt = g->ow - p.ox < nrows - i ? g->ow - p.ox : nrows - i;
    float *xn = x + p.n * img;
    const float *seg = cols + (size_t)i * kc;
    for (int ky = 0; ky < g->kh; ky++) {
      const int iy = p.oy * g->sh - g->ph + ky * g->dh;
      if (iy < 0 || iy >= g->ih) continue;
      const float *src = seg + ky * span;
      float *dst = xn + (size_t)iy * line;
      for (int j = 0; j < cnt; j++) {
        const float *s = src + j * kc;
        const int ix0 = (p.ox + j) * g->sw - g->pw;
        if (g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->iw) {
          add_to(dst + (size_t)ix0 * ic, s, span);
          continue;
        }
        for (int kx = 0; kx < g->kw; kx++) {
          const int ix = ix0 + kx * g->dw;
          if (ix >= 0 && ix < g->iw) add_to(dst + (size_t)ix * ic, s + kx * ic, ic);
        }
      }
    }
    i += cnt;
    p.ox += cnt - 1;
    pos_next(g, &p);
  }
}

/* ---- GEMMs on the column matrices ----
 *
 * The column matrices are GEMM operands with few columns on one side (the filters,
 * 32..128), where OpenBLAS runs at about 60% of its large-matrix speed: its packing
 * copies a matrix that is used only `filters` times per element. These kernels use the
 * chunk where it lies (it is in L2), broadcasting one element of A against vectors of
 * B, with a tile of MR x (16 NV) accumulators in registers. They need AVX-512F and
 * column counts that are multiples of 16; everything else goes to OpenBLAS. Measured on
 * the convolution shapes of the Fashion-MNIST CNN (chunks of 72 x 800 and 800 x 64, one
 * thread): 113..116 GFLOP/s against OpenBLAS's 94..98 on the same chunks, and OpenBLAS's
 * own single-thread peak here is 95..97 (1024^3). The whole CNN trains about 14% faster
 * than with OpenBLAS alone. They use fused multiply-adds, so their sums may differ from
 * OpenBLAS's in the last bits (the results do not depend on anything but the CPU). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERNEL __attribute__((target("avx512f")))
#define UNROLL _Pragma("GCC unroll 16")

/* One tile: C (mr, 16 nv) = A B, with C starting from itself (acc), from the row vector
 * init, or from zero. A's element (i, p) is a[i * ars + p * acs], so the same tile
 * serves A (row-major) and A^T. With mr and nv constants after inlining, the
 * accumulators live in registers. */
KERNEL static inline __attribute__((always_inline)) void tile(const int mr, const int nv, int k,
                                                              const float *a, size_t ars,
                                                              size_t acs, const float *b,
                                                              size_t ldb, float *c, size_t ldc,
                                                              const float *init, bool acc) {
  __m512 s[12][4];
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int j = 0; j < nv; j++) s[i][j] =
      acc ? _mm512_loadu_ps(c + i * ldc + 16 * j)
          : init ? _mm512_loadu_ps(init + 16 * j) : _mm512_setzero_ps();
  for (int p = 0; p < k; p++) {
    __m512 bv[4];
    UNROLL for (int j = 0; j < nv; j++) bv[j] = _mm512_loadu_ps(b + (size_t)p * ldb + 16 * j);
    UNROLL for (int i = 0; i < mr; i++) {
      const __m512 av = _mm512_set1_ps(a[i * ars + (size_t)p * acs]);
      UNROLL for (int j = 0; j < nv; j++) s[i][j] = _mm512_fmadd_ps(av, bv[j], s[i][j]);
    }
  }
  UNROLL for (int i = 0; i < mr; i++) UNROLL for (int j = 0; j < nv; j++)
      _mm512_storeu_ps(c + i * ldc + 16 * j, s[i][j]);
}

/* All rows of one column block of 16 nv: tiles of mr rows, then 4, 2 and 1. */
KERNEL static inline __attribute__((always_inline)) void tile_rows(
    const int mr, const int nv, int m, int k, const float *a, size_t ars, size_t acs,
    const float *b, size_t ldb, float *c, size_t ldc, const float *init, bool acc) {
  int i = 0;
  for (; i + mr <= m; i += mr) tile(mr, nv, k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, init, acc);
  for (; i + 4 <= m; i += 4) tile(4, nv, k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, init, acc);
  for (; i + 2 <= m; i += 2) tile(2, nv, k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, init, acc);
  for (; i < m; i++) tile(1, nv, k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, init, acc);
}

/* C (m, n) = A B (+ C if acc, + init broadcast over rows if init), B (k, n) row-major,
 * A (m, k) row-major (ars = lda, acs = 1) or transposed (ars = 1, acs = lda); n % 16 == 0. */
KERNEL static void kernel_gemm(int m, int n, int k, const float *a, size_t ars, size_t acs,
                               const float *b, size_t ldb, float *c, size_t ldc,
                               const float *init, bool acc) {
  int j = 0;
  for (; j + 64 <= n; j += 64)
    tile_rows(6, 4, m, k, a, ars, acs, b + j, ldb, c + j, ldc, init ? init + j : NULL, acc);
  for (; j + 32 <= n; j += 32)
    tile_rows(12, 2, m, k, a, ars, acs, b + j, ldb, c + j, ldc, init ? init + j : NULL, acc);
  for (; j < n; j += 16)
    tile_rows(12, 1, m, k, a, ars, acs, b + j, ldb, c + j, ldc, init ? init + j : NULL, acc);
}

#else
static void kernel_gemm(int m, int n, int k, const float *a, size_t ars, size_t acs,
                        const float *b, size_t ldb, float *c, size_t ldc, const float *init,
                        bool acc) {
  (void)m, (void)n, (void)k, (void)a, (void)ars, (void)acs, (void)b, (void)ldb, (void)c;
  (void)ldc, (void)init, (void)acc;
}
#endif

/* Every row of y (rows, n; row stride ld) set to b (n). */
static void fill_rows(float *y, size_t rows, int n, size_t ld, const float *b) {
  for (size_t i = 0; i < rows; i++) memcpy(y + i * ld, b, sizeof(float) * (size_t)n);
}

/* C (m, n) = A (m, k) B (k, n), plus C (acc) or plus bias in every row (bias). */
static void gemm_nn(bool fast, int m, int n, int k, const float *a, int lda, const float *b,
                    int ldb, float *c, int ldc, const float *bias, bool acc) {
  if (fast && n % 16 == 0) {
    kernel_gemm(m, n, k, a, (size_t)lda, 1, b, (size_t)ldb, c, (size_t)ldc, bias, acc);
    return;
  }
  if (bias && !acc) fill_rows(c, (size_t)m, n, (size_t)ldc, bias);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              acc || bias ? 1.0f : 0.0f, c, ldc);
}

/* C (m, n) (+)= A^T B with A (k, m) and B (k, n). */
static void gemm_tn(bool fast, int m, int n, int k, const float *a, int lda, const float *b,
                    int ldb, float *c, int ldc, bool acc) {
  if (fast && n % 16 == 0) {
    kernel_gemm(m, n, k, a, 1, (size_t)lda, b, (size_t)ldb, c, (size_t)ldc, NULL, acc);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              acc ? 1.0f : 0.0f, c, ldc);
}

/* C (m, n) = A (m, k) B^T for B (n, k); bt is B^T (k, n) when the caller made one (the
 * kernels need it), else NULL. */
static void gemm_nt(bool fast, int m, int n, int k, const float *a, int lda, const float *b,
                    const float *bt, float *c, int ldc) {
  if (fast && bt && n % 16 == 0) {
    kernel_gemm(m, n, k, a, (size_t)lda, 1, bt, (size_t)n, c, (size_t)ldc, NULL, false);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, b, k, 0.0f, c,
              ldc);
}

/* bt (cols, rows) = b^T for b (rows, cols). */
static void transpose(const float *b, int rows, int cols, float *bt) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) bt[(size_t)j * rows + i] = b[(size_t)i * cols + j];
}


/* ---- launchers ---- */

/* How this backend runs one convolution, derived from its geometry. */
typedef struct {
  const dt_conv_geom_t *g;
  bool identity;  /* 1x1 kernel, stride 1, no padding: the column matrix is the input */
  bool kernels;   /* the device may run the AVX-512 kernels (conv_kernels) */
  int chunk_rows; /* column-matrix rows per GEMM */
  int threads;    /* the device's compute threads */
  bool split;     /* more than one thread and the GEMMs on the kernels: by samples */
} plan_t;

static plan_t plan_of(const dt_device_t *dev, const dt_conv_desc_t *c) {
  const dt_conv_geom_t *g = &c->g;
  const dt_cpu_state_t *st = dev->state;
  plan_t p = {.g = g, .kernels = st->conv_kernels};
  p.identity = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
  p.chunk_rows = (int)(CHUNK_FLOATS / conv_cols(g)) / CHUNK_ALIGN * CHUNK_ALIGN;
  if (p.chunk_rows < MIN_CHUNK_ROWS) p.chunk_rows = MIN_CHUNK_ROWS;
  p.threads = dt_cpu_threads_of(dev);
  /* The kernels need oc % 16 for x W and cols^T dy (and kc % 16 for dy W^T: backward
   * with dx checks that itself). */
  p.split = p.threads > 1 && p.kernels && !c->transpose && g->oc % 16 == 0;
  return p;
}

/* Rows of the column matrix per sample: positions of the convolution's output. */
static size_t rows_per_sample(const plan_t *p) { return (size_t)p->g->oh * p->g->ow; }

/* The kernels read a transposed copy of the kernel tensor where they multiply by its
 * transpose: in the convolution's backward pass (dy W^T) and in the transposed
 * convolution's forward pass (x W^T). */
static bool needs_wt(const plan_t *p) { return p->kernels && conv_cols(p->g) % 16 == 0; }

/* Parts the batch is split into: 1 on one thread. */
static int parts_of(const plan_t *p, int batch) {
  if (!p->split) return 1;
  return batch < p->threads ? (batch > 1 ? batch : 1) : p->threads;
}

/* Column-chunk floats of one part (0 for the identity). */
static size_t part_cols(const plan_t *p, int batch) {
  if (p->identity) return 0;
  const int parts = parts_of(p, batch);
  size_t rows = (size_t)((batch + parts - 1) / parts) * rows_per_sample(p);
  if (rows > (size_t)p->chunk_rows) rows = (size_t)p->chunk_rows;
  return rows * conv_cols(p->g);
}

/* The layout: the column chunk of every part, then a dW (kc, oc) for every part but
 * the first, then W^T (oc, kc) at the end. All of it grows with the batch, so the
 * workspace sized for the largest batch holds the layout of every smaller one. */
static size_t workspace(const plan_t *p, int batch) {
  const size_t parts = (size_t)parts_of(p, batch), kc = conv_cols(p->g);
  return parts * part_cols(p, batch) + (parts - 1) * kc * p->g->oc +
         (needs_wt(p) ? kc * p->g->oc : 0);
}

/* With oneDNN the primitives are made here, before the steps; the im2col workspace is
 * still sized, so that a shape oneDNN cannot run falls back to im2col. */
size_t dt_cpu_conv_workspace(const dt_device_t *dev, const dt_conv_desc_t *c, int batch) {
  const dt_cpu_state_t *st = dev->state;
  if (st->conv_onednn) dt_cpu_dnnl_conv_prepare(st->dnnl, c, batch, st->bf16);
  const plan_t p = plan_of(dev, c);
  return workspace(&p, batch);
}

static float *wt_workspace(const plan_t *p, float *work, int batch) {
  return work + workspace(p, batch) - conv_cols(p->g) * p->g->oc;
}

/* Rows in the chunk starting at r0. */
static int chunk_at(const plan_t *p, size_t rows, size_t r0) {
  return (int)(rows - r0 < (size_t)p->chunk_rows ? rows - r0 : (size_t)p->chunk_rows);
}

/* The convolution of g: y (rows, oc) = cols(x) W (+ b). */
static void conv_forward(const plan_t *p, bool fast, const float *w, const float *b, float *cols,
                         int batch, const float *x, float *y) {
  const dt_conv_geom_t *g = p->g;
  const size_t rows = (size_t)batch * rows_per_sample(p);
  const int kc = (int)conv_cols(g), f = g->oc;
  for (size_t r0 = 0; r0 < rows; r0 += (size_t)p->chunk_rows) {
    const int n = chunk_at(p, rows, r0);
    const float *a = x + r0 * kc;
    if (!p->identity) {
      im2col(g, x, r0, n, cols);
      a = cols;
    }
    gemm_nn(fast, n, f, kc, a, kc, w, f, y + r0 * f, f, b, false);
  }
}

/* The transposed convolution: y = col2im(x W^T) (+ b), x (rows, oc), y the image
 * (batch, ih, iw, ic) of g. */
static void transpose_forward(const plan_t *p, bool fast, const float *w, const float *b,
                              float *cols, float *wt, int batch, const float *x, float *y) {
  const dt_conv_geom_t *g = p->g;
  const size_t rows = (size_t)batch * rows_per_sample(p);
  const size_t ypos = (size_t)batch * g->ih * g->iw;
  const int kc = (int)conv_cols(g), oc = g->oc;
  if (b)
    fill_rows(y, ypos, g->ic, (size_t)g->ic, b);
  else
    memset(y, 0, sizeof(float) * ypos * g->ic);
  if (wt) transpose(w, kc, oc, wt);
  for (size_t r0 = 0; r0 < rows; r0 += (size_t)p->chunk_rows) {
    const int n = chunk_at(p, rows, r0);
    if (p->identity) {
      /* y already holds the bias: accumulate (this path has no W^T copy). */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, kc, oc, 1.0f, x + r0 * oc, oc, w,
                  oc, 1.0f, y + r0 * kc, kc);
      continue;
    }
    gemm_nt(fast, n, kc, oc, x + r0 * oc, oc, w, wt, cols, kc);
    col2im_add(g, cols, r0, n, y);
  }
}

/* The kernels run on one thread each: on the pool's threads by samples (split), or on
 * the calling thread while OpenBLAS is single-threaded; otherwise the GEMMs go to
 * OpenBLAS, which splits them. */
static bool use_kernels(const plan_t *p) {
  return p->kernels && (p->split || openblas_get_num_threads() == 1);
}

/* One part of a convolution split by samples: samples [b0, b1) of the batch. */
typedef struct {
  const plan_t *p;
  int batch;
  const float *x, *w, *b, *dy;
  float *y, *dw, *dx, *work, *wt;
} split_job_t;

static void sample_range(const split_job_t *j, int part, int parts, int *b0, int *b1) {
  *b0 = (int)((long)j->batch * part / parts);
  *b1 = (int)((long)j->batch * (part + 1) / parts);
}

static float *part_work(const split_job_t *j, int part) {
  return j->work + (size_t)part * part_cols(j->p, j->batch);
}

static void forward_part(void *arg, int part, int parts) {
  const split_job_t *j = arg;
  const dt_conv_geom_t *g = j->p->g;
  int b0, b1;
  sample_range(j, part, parts, &b0, &b1);
  const size_t in = (size_t)g->ih * g->iw * g->ic, out = rows_per_sample(j->p) * g->oc;
  conv_forward(j->p, true, j->w, j->b, part_work(j, part), b1 - b0, j->x + b0 * in,
               j->y + b0 * out);
}

void dt_cpu_conv_forward(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                         const float *w, const float *b, float *y, float *work) {
  const dt_cpu_state_t *st = s->dev->state;
  if (st->conv_onednn && dt_cpu_dnnl_conv_forward(st->dnnl, c, batch, st->bf16, x, w, b, y))
    return;
  const plan_t p = plan_of(s->dev, c);
  const bool fast = use_kernels(&p);
  if (c->transpose) {
    transpose_forward(&p, fast, w, b, work,
                      fast && needs_wt(&p) && !p.identity ? wt_workspace(&p, work, batch) : NULL,
                      batch, x, y);
    return;
  }
  const int parts = parts_of(&p, batch);
  if (parts == 1) {
    conv_forward(&p, fast, w, b, work, batch, x, y);
    return;
  }
  split_job_t j = {.p = &p, .batch = batch, .x = x, .w = w, .b = b, .y = y, .work = work};
  dt_cpu_pool_run(dt_cpu_pool_of(s), parts, forward_part, &j);
}

/* Backward of the convolution of g, given dy (rows, oc): dW = cols^T dy and
 * dx = col2im(dy W^T), chunk by chunk (cols recomputed; the chunk buffer holds cols
 * for dW, then dy W^T for dx). wt, where given, already holds W^T. */
static void conv_backward(const plan_t *p, bool fast, const float *w, float *dw, float *cols,
                          float *wt, int batch, const float *x, const float *dy, float *dx) {
  const dt_conv_geom_t *g = p->g;
  const size_t rows = (size_t)batch * rows_per_sample(p);
  const int kc = (int)conv_cols(g), f = g->oc;
  if (dx && !p->identity) memset(dx, 0, sizeof(float) * (size_t)batch * g->ih * g->iw * g->ic);
  for (size_t r0 = 0; r0 < rows; r0 += (size_t)p->chunk_rows) {
    const int n = chunk_at(p, rows, r0);
    const float *a = x + r0 * kc, *dyc = dy + r0 * f;
    if (!p->identity) {
      im2col(g, x, r0, n, cols);
      a = cols;
    }
    gemm_tn(fast, kc, f, n, a, kc, dyc, f, dw, f, r0 > 0);
    if (!dx) continue;
    if (p->identity) {
      gemm_nt(fast, n, kc, f, dyc, f, w, wt, dx + r0 * kc, kc);
      continue;
    }
    gemm_nt(fast, n, kc, f, dyc, f, w, wt, cols, kc);
    col2im_add(g, cols, r0, n, dx);
  }
}

/* Backward of the transposed convolution: with cols = im2col(dy) over g,
 * dW = cols^T x and dx = cols W. */
static void transpose_backward(const plan_t *p, bool fast, const float *w, float *dw,
                               float *cols, int batch, const float *x, const float *dy,
                               float *dx) {
  const dt_conv_geom_t *g = p->g;
  const size_t rows = (size_t)batch * rows_per_sample(p);
  const int kc = (int)conv_cols(g), oc = g->oc;
  for (size_t r0 = 0; r0 < rows; r0 += (size_t)p->chunk_rows) {
    const int n = chunk_at(p, rows, r0);
    const float *a = dy + r0 * kc;
    if (!p->identity) {
      im2col(g, dy, r0, n, cols);
      a = cols;
    }
    gemm_tn(fast, kc, oc, n, a, kc, x + r0 * oc, oc, dw, oc, r0 > 0);
    if (dx) gemm_nn(fast, n, oc, kc, a, kc, w, oc, dx + r0 * oc, oc, NULL, false);
  }
}

static void backward_part(void *arg, int part, int parts) {
  const split_job_t *j = arg;
  const dt_conv_geom_t *g = j->p->g;
  int b0, b1;
  sample_range(j, part, parts, &b0, &b1);
  const size_t in = (size_t)g->ih * g->iw * g->ic, out = rows_per_sample(j->p) * g->oc;
  const size_t wsize = conv_cols(g) * g->oc;
  /* Part 0 writes dW itself; the others their own, added in order afterwards. */
  float *dw = part == 0 ? j->dw
                        : j->work + (size_t)parts * part_cols(j->p, j->batch) +
                              (size_t)(part - 1) * wsize;
  conv_backward(j->p, true, j->w, dw, part_work(j, part), j->wt, b1 - b0, j->x + b0 * in,
                j->dy + b0 * out, j->dx ? j->dx + b0 * in : NULL);
}

typedef struct {
  float *dw;
  const float *partials; /* (parts - 1) of them, one after another */
  size_t wsize;
  int parts;
} dw_sum_job_t;

/* dW += the other parts' dW, in part order for every element. */
static void dw_sum_range(void *arg, size_t b, size_t e) {
  const dw_sum_job_t *j = arg;
  for (int q = 1; q < j->parts; q++) {
    const float *src = j->partials + (size_t)(q - 1) * j->wsize;
    for (size_t i = b; i < e; i++) j->dw[i] += src[i];
  }
}

void dt_cpu_conv_backward(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                          const float *w, const float *dy, float *dw, float *db, float *dx,
                          float *work) {
  const plan_t p = plan_of(s->dev, c);
  const dt_conv_geom_t *g = &c->g;
  if (db) {
    /* The bias is added at every position of the layer's output. */
    const size_t pos = c->transpose ? (size_t)g->ih * g->iw : (size_t)g->oh * g->ow;
    dt_cpu_col_sums(s, (size_t)batch * pos, c->transpose ? g->ic : g->oc, dy, db);
  }
  const dt_cpu_state_t *st = s->dev->state;
  if (st->conv_onednn &&
      dt_cpu_dnnl_conv_backward(st->dnnl, c, batch, st->bf16, x, w, dy, dw, dx))
    return;
  const bool fast = use_kernels(&p);
  if (c->transpose) {
    transpose_backward(&p, fast, w, dw, work, batch, x, dy, dx);
    return;
  }
  float *wt = fast && needs_wt(&p) ? wt_workspace(&p, work, batch) : NULL;
  if (dx && wt) transpose(w, (int)conv_cols(g), g->oc, wt);
  const int parts = dx && !wt ? 1 : parts_of(&p, batch);
  if (parts == 1) {
    conv_backward(&p, fast, w, dw, work, wt, batch, x, dy, dx);
    return;
  }
  dt_cpu_pool_t *pool = dt_cpu_pool_of(s);
  split_job_t j = {.p = &p, .batch = batch, .x = x, .w = w, .dy = dy, .dw = dw, .dx = dx,
                   .work = work, .wt = wt};
  dt_cpu_pool_run(pool, parts, backward_part, &j);
  const size_t wsize = conv_cols(g) * g->oc;
  dw_sum_job_t sj = {dw, work + (size_t)parts * part_cols(&p, batch), wsize, parts};
  dt_cpu_pool_for(pool, wsize, DT_CPU_GRAIN_CHEAP, DT_CPU_ALIGN_FLOATS, dw_sum_range, &sj);
}
