/* The CPU backend (private to the device library): its state, and the launchers that
 * each cpu/ file defines and cpu.c puts into the backend table.
 *
 * Work runs on the calling thread and on the backend's thread pool (threads.c), which
 * the kernels share out by fixed index ranges; OpenBLAS uses its own threads inside a
 * GEMM. A launcher returns when its work is done: the streams are plain handles and
 * every event is complete as soon as it is recorded. Device memory is host memory. */
#ifndef DTRAIN_DEVICE_CPU_H
#define DTRAIN_DEVICE_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/device.h"
#include "dtrain/parallel.h"

/* threads.c: the pool of compute threads. */
typedef struct dt_cpu_pool dt_cpu_pool_t;

/* A pool of `threads` threads counting the caller (threads - 1 pthreads, none for 1). */
int dt_cpu_pool_create(int threads, dt_cpu_pool_t **out, dt_error_t *err);
/* Joins the threads; NULL is a no-op. */
void dt_cpu_pool_destroy(dt_cpu_pool_t *pool);
/* The threads counting the caller; 1 for NULL. */
int dt_cpu_pool_threads(const dt_cpu_pool_t *pool);
/* fn(arg, part, parts) for every part in [0, parts) (parts clamped to [1, threads]),
 * part i on pool thread i (the caller for 0); returns when all are done. Called from
 * inside a job, it runs the parts in order on the calling thread. */
void dt_cpu_pool_run(dt_cpu_pool_t *pool, int parts, void (*fn)(void *arg, int part, int parts),
                     void *arg);
/* How many chunks dt_cpu_pool_for splits n elements into: min(threads, n / grain), at
 * least 1. */
int dt_cpu_pool_parts(const dt_cpu_pool_t *pool, size_t n, size_t grain);
/* fn over [0, n) in dt_cpu_pool_parts contiguous chunks (dtrain/parallel.h's contract)
 * whose boundaries are multiples of align: DT_CPU_ALIGN_FLOATS for ranges of floats, so
 * that two threads never write one cache line; 1 for rows or samples. */
void dt_cpu_pool_for(dt_cpu_pool_t *pool, size_t n, size_t grain, size_t align, dt_range_fn fn,
                     void *arg);
enum { DT_CPU_ALIGN_FLOATS = 16 };

/* Grains (elements per chunk, at least) of the element-wise kernels: a hand-off to a
 * pool thread costs a few microseconds, about what a cheap pass (ReLU, a copy) spends
 * on 16K floats and a transcendental one (exp, tanh) on 2K. */
enum { DT_CPU_GRAIN_CHEAP = 1 << 14, DT_CPU_GRAIN_MATH = 1 << 11 };

typedef struct {
  /* Our AVX-512 convolution kernels may run: the CPU has AVX-512F and the
   * conv_blas option is off. They run only while OpenBLAS is single-threaded. */
  bool conv_kernels;
  dt_cpu_pool_t *pool; /* the compute threads (set_threads; 1 at creation) */
  struct dt_cpu_dnnl *dnnl; /* oneDNN's engine and primitive cache (dnnl.c) */
  bool conv_onednn;         /* convolutions on oneDNN (train.conv) */
  bool bf16;                /* GEMM and convolution inputs in bfloat16 (train.precision) */
  bool no_bf16;             /* the test switch: pretend the CPU has no bf16 */
  bool conv_blas;           /* the conv_blas option: train.conv = auto means im2col */
} dt_cpu_state_t;

/* The pool of the device a stream belongs to. */
static inline dt_cpu_pool_t *dt_cpu_pool_of(const dt_stream_t *s) {
  return ((const dt_cpu_state_t *)s->dev->state)->pool;
}
static inline int dt_cpu_threads_of(const dt_device_t *dev) {
  return dt_cpu_pool_threads(((const dt_cpu_state_t *)dev->state)->pool);
}

/* dnnl.c: oneDNN. The functions that run something return false where oneDNN cannot
 * (a shape it has no primitive for): the caller then runs its own code. */
typedef struct dt_cpu_dnnl dt_cpu_dnnl_t;
int dt_cpu_dnnl_create(dt_cpu_dnnl_t **out, dt_error_t *err);
void dt_cpu_dnnl_destroy(dt_cpu_dnnl_t *d); /* NULL is a no-op */
/* The threads oneDNN's OpenMP runtime uses from now on. */
void dt_cpu_dnnl_set_threads(dt_cpu_dnnl_t *d, int threads);
/* Whether oneDNN runs bfloat16 arithmetic here (AVX-512 BF16 or AMX). */
bool dt_cpu_dnnl_has_bf16(void);
/* oneDNN's name of the instruction set it uses on this CPU. */
const char *dt_cpu_dnnl_isa_name(void);
/* Makes the primitives of a convolution for `batch` samples ahead of the steps. */
bool dt_cpu_dnnl_conv_prepare(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16);
bool dt_cpu_dnnl_conv_forward(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16,
                              const float *x, const float *w, const float *b, float *y);
bool dt_cpu_dnnl_conv_backward(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16,
                               const float *x, const float *w, const float *dy, float *dw,
                               float *dx);
/* dtrain/device.h's params_begin: the bf16 copies of parameters in [params, params +
 * n) made before are stale; n = 0 forgets the buffer. */
void dt_cpu_dnnl_params_begin(dt_cpu_dnnl_t *d, const float *params, size_t n);
/* As cblas_sgemm (row-major) with A and B rounded to bfloat16, accumulating in float. */
bool dt_cpu_dnnl_gemm_bf16(dt_cpu_dnnl_t *d, dt_trans ta, dt_trans tb, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc);

/* Fills dev with the CPU backend's table and state. */
int dt_cpu_device_init(dt_device_t *dev, const dt_device_options_t *opt, dt_error_t *err);

/* blas.c */
void dt_cpu_gemm(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void dt_cpu_gemm_strided_batched(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k,
                                 float alpha, const float *a, int lda, size_t stride_a,
                                 const float *b, int ldb, size_t stride_b, float beta, float *c,
                                 int ldc, size_t stride_c, int count);
void dt_cpu_broadcast_rows(dt_stream_t *s, size_t rows, int n, size_t ld, const float *v,
                           float *y);
void dt_cpu_col_sums(dt_stream_t *s, size_t rows, int n, const float *a, float *out);
void dt_cpu_mul(dt_stream_t *s, size_t n, const float *a, const float *b, float *out);

/* elementwise.c */
void dt_cpu_activation_forward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                               const float *x, float *y);
void dt_cpu_activation_backward(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                                const float *x, const float *y, const float *dy, float *dx);
void dt_cpu_softmax_forward(dt_stream_t *s, int rows, size_t dim, const float *x, float *y);
void dt_cpu_softmax_backward(dt_stream_t *s, int rows, size_t dim, const float *y,
                             const float *dy, float *dx);
void dt_cpu_dropout_forward(dt_stream_t *s, size_t n, float rate, dt_rng_t *rng, const float *x,
                            float *y, float *mask);
void dt_cpu_embedding_forward(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                              const float *table, float *y);
void dt_cpu_embedding_backward(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                               const float *dy, float *dtable);

/* conv.c */
size_t dt_cpu_conv_workspace(const dt_device_t *dev, const dt_conv_desc_t *c, int batch);
void dt_cpu_conv_forward(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                         const float *w, const float *b, float *y, float *work);
void dt_cpu_conv_backward(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                          const float *w, const float *dy, float *dw, float *db, float *dx,
                          float *work);

/* pool.c */
void dt_cpu_pool2d_forward(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g,
                           int batch, const float *x, float *y, int32_t *idx);
void dt_cpu_pool2d_backward(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g,
                            int batch, const float *dy, float *dx, const int32_t *idx);
void dt_cpu_global_pool_forward(dt_stream_t *s, dt_pool_kind kind, int batch, size_t positions,
                                int channels, const float *x, float *y, int32_t *idx);
void dt_cpu_global_pool_backward(dt_stream_t *s, dt_pool_kind kind, int batch,
                                 size_t positions, int channels, const float *dy, float *dx,
                                 const int32_t *idx);

/* batch_norm.c */
size_t dt_cpu_batch_norm_workspace(const dt_device_t *dev, int channels);
void dt_cpu_batch_norm_forward(dt_stream_t *s, const dt_batch_norm_desc_t *bn, bool training,
                               size_t total, const float *x, const float *gamma,
                               const float *beta, float *moving_mean, float *moving_var,
                               float *y, float *work);
void dt_cpu_batch_norm_backward(dt_stream_t *s, const dt_batch_norm_desc_t *bn, size_t total,
                                const float *x, const float *dy, const float *gamma,
                                float *dgamma, float *dbeta, float *dx, float *work);

/* rnn.c */
void dt_cpu_seq_gather(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                       const float *src, int width, int offset, float *dst);
void dt_cpu_seq_scatter(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                        const float *src, float *dst, int width, int offset, bool accumulate);
void dt_cpu_rnn_step_forward(dt_stream_t *s, const dt_rnn_step_t *p);
void dt_cpu_rnn_step_backward(dt_stream_t *s, const dt_rnn_step_back_t *p);

/* merge.c */
void dt_cpu_merge_forward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                          const float *const *xs, float *y);
void dt_cpu_merge_backward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                           const float *const *xs, const float *y, const float *dy,
                           float *const *dxs);
void dt_cpu_copy_rows(dt_stream_t *s, size_t rows, size_t width, const float *src, size_t src_ld,
                      float *dst, size_t dst_ld);
void dt_cpu_upsample2d_forward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                               float *y);
void dt_cpu_upsample2d_backward(dt_stream_t *s, const dt_resize2d_t *r, int batch,
                                const float *dy, float *dx);
void dt_cpu_pad2d_forward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                          float *y);
void dt_cpu_pad2d_backward(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *dy,
                           float *dx);

/* sampling.c */
void dt_cpu_gaussian_sample_forward(dt_stream_t *s, int rows, size_t n, dt_rng_t *rng,
                                    const float *mean, const float *log_var, float *eps, float *z,
                                    float *kl);
void dt_cpu_gaussian_sample_backward(dt_stream_t *s, int rows, size_t n, float kl_scale,
                                     const float *mean, const float *log_var, const float *eps,
                                     const float *dz, float *dmean, float *dlog_var);

#endif
