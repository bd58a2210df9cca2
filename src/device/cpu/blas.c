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
  (void)s;
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

void dt_cpu_broadcast_rows(dt_stream_t *s, size_t rows, int n, size_t ld, const float *v,
                           float *y) {
  (void)s;
  for (size_t i = 0; i < rows; i++) memcpy(y + i * ld, v, sizeof(float) * (size_t)n);
}

void dt_cpu_col_sums(dt_stream_t *s, size_t rows, int n, const float *a, float *out) {
  (void)s;
  col_sums(a, rows, n, out);
}

void dt_cpu_mul(dt_stream_t *s, size_t n, const float *a, const float *b, float *out) {
  (void)s;
  for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
