/* The CPU backend's BLAS-shaped work: GEMMs on OpenBLAS, and the row broadcasts and
 * column sums that go with them (a dense layer's bias and its gradient). */
#include <cblas.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/hot.h"

/* ---- kernels ---- */

DT_HOT_LOOP static void col_sums(const float *restrict a, size_t rows, int n,
                                 float *restrict out) {
  memset(out, 0, sizeof(float) * (size_t)n);
  for (size_t i = 0; i < rows; i++) {
    const float *row = a + i * n;
    for (int j = 0; j < n; j++) out[j] += row[j];
  }
}

/* ---- launchers ---- */

static enum CBLAS_TRANSPOSE trans(dt_trans t) { return t == DT_TRANS ? CblasTrans : CblasNoTrans; }

void dt_cpu_gemm(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  const dt_cpu_state_t *st = s->dev->state;
  if (st->bf16 && dt_cpu_dnnl_gemm_bf16(st->dnnl, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                                        c, ldc))
    return;
  cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dt_cpu_gemm_strided_batched(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k,
                                 float alpha, const float *a, int lda, size_t stride_a,
                                 const float *b, int ldb, size_t stride_b, float beta, float *c,
                                 int ldc, size_t stride_c, int count) {
  (void)s;
  for (int i = 0; i < count; i++)
    cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), m, n, k, alpha, a + (size_t)i * stride_a,
                lda, b + (size_t)i * stride_b, ldb, beta, c + (size_t)i * stride_c, ldc);
}

typedef struct {
  size_t rows, ld;
  int n;
  const float *a, *b;
  float *out;
} rows_job_t;

static void broadcast_range(void *p, size_t b, size_t e) {
  const rows_job_t *j = p;
  for (size_t i = b; i < e; i++) memcpy(j->out + i * j->ld, j->a, sizeof(float) * (size_t)j->n);
}

void dt_cpu_broadcast_rows(dt_stream_t *s, size_t rows, int n, size_t ld, const float *v,
                           float *y) {
  rows_job_t j = {.n = n, .ld = ld, .a = v, .out = y};
  const size_t grain = DT_CPU_GRAIN_CHEAP / (n > 0 ? (size_t)n : 1) + 1;
  dt_cpu_pool_for(dt_cpu_pool_of(s), rows, grain, 1, broadcast_range, &j);
}

/* Sums of columns [b, e) over all rows: split by columns, each sum runs over the rows
 * in the same order on one thread, so the results do not depend on the threads. */
DT_HOT_LOOP static void col_sums_range(void *p, size_t b, size_t e) {
  const rows_job_t *j = p;
  const size_t w = e - b, n = (size_t)j->n;
  float *restrict out = j->out + b;
  memset(out, 0, sizeof(float) * w);
  for (size_t i = 0; i < j->rows; i++) {
    const float *restrict row = j->a + i * n + b;
    for (size_t c = 0; c < w; c++) out[c] += row[c];
  }
}

void dt_cpu_col_sums(dt_stream_t *s, size_t rows, int n, const float *a, float *out) {
  dt_cpu_pool_t *pool = dt_cpu_pool_of(s);
  /* Column chunks are multiples of 16, so a split needs 32 columns; it pays from a
   * cheap grain of values per thread. */
  if (n < 32 || rows * (size_t)n < 2 * (size_t)DT_CPU_GRAIN_CHEAP ||
      dt_cpu_pool_threads(pool) == 1) {
    col_sums(a, rows, n, out);
    return;
  }
  rows_job_t j = {.rows = rows, .n = n, .a = a, .out = out};
  dt_cpu_pool_for(pool, (size_t)n, 16, 16, col_sums_range, &j);
}

static void mul_range(void *p, size_t b, size_t e) {
  const rows_job_t *j = p;
  for (size_t i = b; i < e; i++) j->out[i] = j->a[i] * j->b[i];
}

void dt_cpu_mul(dt_stream_t *s, size_t n, const float *a, const float *b, float *out) {
  rows_job_t j = {.a = a, .b = b, .out = out};
  dt_cpu_pool_for(dt_cpu_pool_of(s), n, DT_CPU_GRAIN_CHEAP, DT_CPU_ALIGN_FLOATS, mul_range, &j);
}
