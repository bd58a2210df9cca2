/* The compute device: where the model's memory lives and its kernels run.
 *
 * A device is one fixed table of backend functions (dt_device_ops_t) plus the
 * backend's private state, chosen once when the device is created, in the shape of
 * redis' ae backends. The layers reach BLAS, SIMD kernels (and later CUDA) only
 * through it: GEMM, the convolution, pooling, normalization and recurrent-cell
 * kernels, the element-wise kernels, copies and fills. Backends: cpu/ (OpenBLAS and
 * our AVX-512 convolution kernels); cuda/ will fill in the same table.
 *
 * Streams and events follow CUDA's model. Every kernel is launched on a stream and
 * runs after the work launched on it before; an event recorded on a stream is
 * complete once the work launched before the record is done, and another stream (or
 * the host) can wait for it. On the CPU backend a kernel has finished when its
 * launcher returns, so a stream has nothing pending and an event is complete at
 * once; code that uses the device must still record and wait as if work were
 * asynchronous, so that a GPU backend can run it unchanged.
 *
 * Errors: kernel launchers, copies and fills return nothing, as CUDA's launches
 * report failures late; a backend that can fail asynchronously returns the failure
 * from the next synchronize, event query or host transfer, which take a dt_error_t.
 *
 * Data are row-major float32 throughout. Pointers passed to kernels are device
 * memory from dt_device_alloc (or views into it), unless a parameter says host. */
#ifndef DTRAIN_DEVICE_H
#define DTRAIN_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/parallel.h"
#include "dtrain/rng.h"

typedef struct dt_device dt_device_t;
typedef struct dt_stream dt_stream_t;
typedef struct dt_device_event dt_device_event_t;

/* ---- creating a device ---- */

typedef enum { DT_DEVICE_CPU } dt_device_kind;

/* Zero-initialized options give the default CPU device. */
typedef struct {
  dt_device_kind kind;
  struct {
    /* Convolutions on OpenBLAS even where the AVX-512 kernels could run (the test
     * switch DT_CONV_BLAS; also a way to compare the two by hand); it also makes
     * train.conv = auto mean im2col rather than oneDNN. */
    bool conv_blas;
    /* Behave as if the CPU had no bfloat16 instructions (the test switch
     * DT_TEST_NO_BF16), so that the error for train.precision = bf16 can be tested on
     * a CPU that has them. */
    bool no_bf16;
  } cpu;
} dt_device_options_t;

/* How the backend computes: which convolution implementation (train.conv) and the
 * precision of the GEMM and convolution inputs (train.precision). */
typedef enum { DT_CONV_AUTO, DT_CONV_IM2COL, DT_CONV_ONEDNN } dt_conv_impl;
typedef enum { DT_PRECISION_FP32, DT_PRECISION_BF16 } dt_precision;
typedef struct {
  dt_conv_impl conv;
  dt_precision precision;
} dt_device_math_t;

int dt_device_create(const dt_device_options_t *opt, dt_device_t **out, dt_error_t *err);
/* Destroys the default stream too; every other stream, event and allocation must be
 * released before. NULL is a no-op. */
void dt_device_destroy(dt_device_t *dev);

/* ---- descriptors of the layer kernels ---- */

typedef enum { DT_NO_TRANS, DT_TRANS } dt_trans;
typedef enum { DT_COPY_H2D, DT_COPY_D2H, DT_COPY_D2D } dt_copy_kind;
typedef enum { DT_ACT_RELU, DT_ACT_LEAKY_RELU, DT_ACT_SIGMOID, DT_ACT_TANH } dt_activation;
typedef enum { DT_POOL_MAX, DT_POOL_AVG } dt_pool_kind;
typedef enum { DT_RNN_SIMPLE, DT_RNN_LSTM, DT_RNN_GRU } dt_rnn_kind;
/* The element-wise merges of several equally shaped inputs (Keras' merge layers). */
typedef enum {
  DT_MERGE_ADD,
  DT_MERGE_SUBTRACT, /* two inputs: x0 - x1 */
  DT_MERGE_MULTIPLY,
  DT_MERGE_AVERAGE,
  DT_MERGE_MAXIMUM /* ties: the gradient goes to the first input that attains it */
} dt_merge_kind;
/* A merge takes at most this many inputs (the pointer arrays are host arrays of device
 * pointers, passed by value to a kernel where the backend needs). */
enum { DT_MAX_MERGE_INPUTS = 8 };

/* Nearest-neighbour upsampling and zero padding of (h, w, c) images, channels-last. */
typedef struct {
  int h, w, c;                    /* input image */
  int sh, sw;                     /* upsampling: each pixel becomes sh x sw pixels */
  int top, bottom, left, right;   /* padding: rows and columns of zeros added */
} dt_resize2d_t;

/* A 2-d convolution from (ih, iw, ic) images to (oh, ow, oc) images, channels-last.
 * A 1-d convolution is the case ih = kh = 1 (a (T, F) sample is a (1, T, F) image in
 * memory); pooling windows use the same geometry with ic = oc. */
typedef struct {
  int ih, iw, ic; /* input image */
  int oh, ow, oc; /* output image */
  int kh, kw;     /* kernel extent (undilated) */
  int sh, sw;     /* strides */
  int dh, dw;     /* dilations */
  int ph, pw;     /* zero padding before the first row / column; after is implied */
} dt_conv_geom_t;

/* A convolution layer: the convolution of g, or with transpose its adjoint, from the
 * layer's input (g.oh, g.ow, g.oc) to its output (g.ih, g.iw, g.ic). The kernel tensor
 * is Keras' (kh, kw, g.ic, g.oc) in both cases. */
typedef struct {
  dt_conv_geom_t g;
  bool transpose;
} dt_conv_desc_t;

/* Batch normalization over the last axis of `channels`. */
typedef struct {
  int channels;
  double momentum;
  float epsilon;
} dt_batch_norm_desc_t;

/* One time step of a recurrent cell for `batch` rows (see nn/layers/recurrent.h for the
 * equations and the fused gate layout; G = gates * units). Forward: the pre-activations
 * a (batch, G) hold x_t K (+ h R for the simple RNN and LSTM) and become the gate
 * activations; bias is (G), or (2, G) for the GRU; writes h_next and, for the LSTM,
 * c_next and tanh_c, for the GRU its recurrent h block rh (batch, units) from the
 * recurrent projection rp (batch, G). */
typedef struct {
  dt_rnn_kind kind;
  int batch, units;
  float *a;
  const float *bias;
  const float *h_prev;
  float *h_next;
  const float *c_prev; /* LSTM */
  float *c_next, *tanh_c;
  const float *rp; /* GRU */
  float *rh;
} dt_rnn_step_t;

/* Backward of one step. dh = dh_carry + dy (dy: rows of the output gradient with row
 * stride dy_stride, NULL when the step has no output). Writes the pre-activation
 * gradients da (batch, G) and, for the GRU, those of the recurrent projection dar;
 * adds the step's bias gradient into dbias ((G), or (2, G) for the GRU); carries the
 * LSTM's dL/dc in dc and writes the GRU's direct part z dh of dL/dh_prev into
 * dh_carry. a, c_prev, tanh_c, rh and h_* are what the forward step left. */
typedef struct {
  dt_rnn_kind kind;
  int batch, units;
  const float *dy;
  size_t dy_stride;
  float *dh, *dh_carry;
  const float *a;
  const float *h_prev; /* GRU */
  const float *h_next; /* simple RNN */
  const float *c_prev, *tanh_c; /* LSTM */
  float *dc;
  const float *rh; /* GRU */
  float *da, *dar;
  float *dbias;
} dt_rnn_step_back_t;

/* ---- the backend table ---- */

typedef struct {
  const char *name;
  void (*destroy)(dt_device_t *dev);
  int (*alloc)(dt_device_t *dev, size_t bytes, void **p, dt_error_t *err);
  void (*free)(dt_device_t *dev, void *p);
  int (*set_threads)(dt_device_t *dev, int threads, dt_error_t *err);
  dt_parallel_t (*parallel)(dt_device_t *dev);
  int (*synchronize)(dt_device_t *dev, dt_error_t *err);

  int (*stream_init)(dt_stream_t *s, dt_error_t *err);
  void (*stream_release)(dt_stream_t *s);
  int (*stream_synchronize)(dt_stream_t *s, dt_error_t *err);
  int (*event_init)(dt_device_event_t *e, dt_error_t *err);
  void (*event_release)(dt_device_event_t *e);
  void (*event_record)(dt_device_event_t *e, dt_stream_t *s);
  void (*stream_wait_event)(dt_stream_t *s, dt_device_event_t *e);
  int (*event_query)(dt_device_event_t *e, bool *done, dt_error_t *err);
  int (*event_synchronize)(dt_device_event_t *e, dt_error_t *err);

  void (*copy)(dt_stream_t *s, void *dst, const void *src, size_t bytes, dt_copy_kind kind);
  void (*fill)(dt_stream_t *s, float *x, size_t n, float value);

  void (*gemm)(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
  void (*gemm_strided_batched)(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k,
                               float alpha, const float *a, int lda, size_t stride_a,
                               const float *b, int ldb, size_t stride_b, float beta, float *c,
                               int ldc, size_t stride_c, int count);
  void (*broadcast_rows)(dt_stream_t *s, size_t rows, int n, size_t ld, const float *v, float *y);
  void (*col_sums)(dt_stream_t *s, size_t rows, int n, const float *a, float *out);
  void (*mul)(dt_stream_t *s, size_t n, const float *a, const float *b, float *out);

  void (*activation_forward)(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                             const float *x, float *y);
  void (*activation_backward)(dt_stream_t *s, dt_activation kind, size_t n, float alpha,
                              const float *x, const float *y, const float *dy, float *dx);
  void (*softmax_forward)(dt_stream_t *s, int rows, size_t dim, const float *x, float *y);
  void (*softmax_backward)(dt_stream_t *s, int rows, size_t dim, const float *y, const float *dy,
                           float *dx);
  void (*dropout_forward)(dt_stream_t *s, size_t n, float rate, dt_rng_t *rng, const float *x,
                          float *y, float *mask);
  void (*embedding_forward)(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                            const float *table, float *y);
  void (*embedding_backward)(dt_stream_t *s, size_t n, int rows, size_t dim, const float *ids,
                             const float *dy, float *dtable);

  size_t (*conv_workspace)(const dt_device_t *dev, const dt_conv_desc_t *c, int batch);
  void (*conv_forward)(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                       const float *w, const float *b, float *y, float *work);
  void (*conv_backward)(dt_stream_t *s, const dt_conv_desc_t *c, int batch, const float *x,
                        const float *w, const float *dy, float *dw, float *db, float *dx,
                        float *work);
  void (*pool2d_forward)(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g, int batch,
                         const float *x, float *y, int32_t *idx);
  void (*pool2d_backward)(dt_stream_t *s, dt_pool_kind kind, const dt_conv_geom_t *g, int batch,
                          const float *dy, float *dx, const int32_t *idx);
  void (*global_pool_forward)(dt_stream_t *s, dt_pool_kind kind, int batch, size_t positions,
                              int channels, const float *x, float *y, int32_t *idx);
  void (*global_pool_backward)(dt_stream_t *s, dt_pool_kind kind, int batch, size_t positions,
                               int channels, const float *dy, float *dx, const int32_t *idx);

  size_t (*batch_norm_workspace)(const dt_device_t *dev, int channels);
  void (*batch_norm_forward)(dt_stream_t *s, const dt_batch_norm_desc_t *bn, bool training,
                             size_t total, const float *x, const float *gamma,
                             const float *beta, float *moving_mean, float *moving_var, float *y,
                             float *work);
  void (*batch_norm_backward)(dt_stream_t *s, const dt_batch_norm_desc_t *bn, size_t total,
                              const float *x, const float *dy, const float *gamma,
                              float *dgamma, float *dbeta, float *dx, float *work);

  void (*seq_gather)(dt_stream_t *s, int steps, int batch, int n, bool reverse, const float *src,
                     int width, int offset, float *dst);
  void (*seq_scatter)(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                      const float *src, float *dst, int width, int offset, bool accumulate);
  void (*rnn_step_forward)(dt_stream_t *s, const dt_rnn_step_t *p);
  void (*rnn_step_backward)(dt_stream_t *s, const dt_rnn_step_back_t *p);
  void (*merge_forward)(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                        const float *const *xs, float *y);
  void (*merge_backward)(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                         const float *const *xs, const float *y, const float *dy,
                         float *const *dxs);
  void (*copy_rows)(dt_stream_t *s, size_t rows, size_t width, const float *src, size_t src_ld,
                    float *dst, size_t dst_ld);
  void (*upsample2d_forward)(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                             float *y);
  void (*upsample2d_backward)(dt_stream_t *s, const dt_resize2d_t *r, int batch,
                              const float *dy, float *dx);
  void (*pad2d_forward)(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *x,
                        float *y);
  void (*pad2d_backward)(dt_stream_t *s, const dt_resize2d_t *r, int batch, const float *dy,
                         float *dx);

  int (*set_math)(dt_device_t *dev, const dt_device_math_t *m, dt_error_t *err);
  void (*gaussian_sample_forward)(dt_stream_t *s, int rows, size_t n, dt_rng_t *rng,
                                  const float *mean, const float *log_var, float *eps, float *z,
                                  float *kl);
  void (*gaussian_sample_backward)(dt_stream_t *s, int rows, size_t n, float kl_scale,
                                   const float *mean, const float *log_var, const float *eps,
                                   const float *dz, float *dmean, float *dlog_var);
  void (*params_begin)(dt_device_t *dev, const float *params, size_t n);
} dt_device_ops_t;

struct dt_device {
  const dt_device_ops_t *ops;
  dt_device_kind kind;
  bool host_memory;    /* the host addresses device memory directly (the CPU) */
  dt_stream_t *stream; /* the default stream, created with the device */
  void *state;         /* the backend's */
};

struct dt_stream {
  dt_device_t *dev;
  void *impl; /* the backend's */
};

struct dt_device_event {
  dt_device_t *dev;
  void *impl; /* the backend's */
};

/* ---- memory, streams and events ---- */

/* bytes of device memory, aligned to 64 bytes, contents undefined. */
static inline int dt_device_alloc(dt_device_t *dev, size_t bytes, void **p, dt_error_t *err) {
  return dev->ops->alloc(dev, bytes, p, err);
}
/* NULL is a no-op. */
static inline void dt_device_free(dt_device_t *dev, void *p) { dev->ops->free(dev, p); }

/* The threads a backend's host-side work may use: on the CPU, OpenBLAS's threads for
 * the GEMMs and the backend's own pool (created with 1 thread, the caller) for every
 * other kernel, which splits its work into fixed ranges per thread: results are
 * bit-identical run to run for a given count, and element-wise results do not depend
 * on it at all. Call it before sizing workspaces (dt_device_conv_workspace depends on
 * the count) and while no kernel runs. */
static inline int dt_device_set_threads(dt_device_t *dev, int threads, dt_error_t *err) {
  return dev->ops->set_threads(dev, threads, err);
}

/* Picks the convolution implementation and the precision (zero-initialized: auto and
 * fp32, what a device starts with). Call it after set_threads and before sizing
 * workspaces, while no kernel runs. DT_ERR_CONFIG for bf16 on a device that has no
 * bfloat16 arithmetic (the message says why; the caller names the config key). With
 * bf16, dt_device_gemm and the convolutions take their inputs in bfloat16 (rounded to
 * nearest even) and accumulate and write float32; the other kernels stay float32. */
static inline int dt_device_set_math(dt_device_t *dev, const dt_device_math_t *m,
                                     dt_error_t *err) {
  return dev->ops->set_math(dev, m, err);
}

/* Says that the n floats at `params` (a model's parameter buffer) keep their values
 * until the next params_begin with the same buffer: the model calls it at the start of
 * every forward pass, and nothing changes its parameters between a forward pass and
 * the backward pass that follows. Kernels may then keep a converted copy of a
 * parameter (the bf16 copy of a dense kernel) from the forward pass for the backward
 * pass instead of converting it again; the next call drops such copies. Memory never
 * named here is converted on every use. Several buffers (the models of a GAN) are
 * tracked apart. */
static inline void dt_device_params_begin(dt_device_t *dev, const float *params, size_t n) {
  if (dev->ops->params_begin) dev->ops->params_begin(dev, params, n);
}
/* Forgets a buffer named by params_begin (before it is freed). */
static inline void dt_device_params_end(dt_device_t *dev, const float *params) {
  if (dev->ops->params_begin) dev->ops->params_begin(dev, params, 0);
}

/* The backend's host threads as a parallel-for, for host-side loops outside the device
 * (the optimizer over the flat vector); valid while the device lives, and it follows
 * set_threads. */
static inline dt_parallel_t dt_device_parallel(dt_device_t *dev) { return dev->ops->parallel(dev); }

/* Waits for all work on every stream of the device. */
static inline int dt_device_synchronize(dt_device_t *dev, dt_error_t *err) {
  return dev->ops->synchronize(dev, err);
}

int dt_device_stream_create(dt_device_t *dev, dt_stream_t **out, dt_error_t *err);
void dt_device_stream_destroy(dt_stream_t *s);
static inline int dt_device_stream_synchronize(dt_stream_t *s, dt_error_t *err) {
  return s->dev->ops->stream_synchronize(s, err);
}

int dt_device_event_create(dt_device_t *dev, dt_device_event_t **out, dt_error_t *err);
void dt_device_event_destroy(dt_device_event_t *e);
/* e completes once the work launched on s so far is done. */
static inline void dt_device_event_record(dt_device_event_t *e, dt_stream_t *s) {
  e->dev->ops->event_record(e, s);
}
/* Work launched on s from now on runs after e completes; the host does not wait. */
static inline void dt_device_stream_wait_event(dt_stream_t *s, dt_device_event_t *e) {
  s->dev->ops->stream_wait_event(s, e);
}
/* *done: whether e has completed, without waiting. */
static inline int dt_device_event_query(dt_device_event_t *e, bool *done, dt_error_t *err) {
  return e->dev->ops->event_query(e, done, err);
}
/* The host waits until e completes. */
static inline int dt_device_event_synchronize(dt_device_event_t *e, dt_error_t *err) {
  return e->dev->ops->event_synchronize(e, err);
}

/* The host's view of device memory [p, p + bytes) once the work on s is done: p itself
 * where the host addresses device memory (no copy), else `mirror` (host memory of
 * bytes) after a copy into it. */
int dt_device_to_host(dt_stream_t *s, void *p, size_t bytes, void *mirror, void **host,
                      dt_error_t *err);
/* Hands back what the host wrote into the view that dt_device_to_host gave: a copy from
 * host to p unless host is p. */
int dt_device_from_host(dt_stream_t *s, void *p, const void *host, size_t bytes,
                        dt_error_t *err);

/* ---- copies, fills and BLAS ---- */

static inline void dt_device_copy(dt_stream_t *s, void *dst, const void *src, size_t bytes,
                                  dt_copy_kind kind) {
  s->dev->ops->copy(s, dst, src, bytes, kind);
}
/* x[0..n) = value */
static inline void dt_device_fill(dt_stream_t *s, float *x, size_t n, float value) {
  s->dev->ops->fill(s, x, n, value);
}

/* C (m, n) = alpha op(A) op(B) + beta C, row-major, as cblas_sgemm. */
static inline void dt_device_gemm(dt_stream_t *s, dt_trans ta, dt_trans tb, int m, int n, int k,
                                  float alpha, const float *a, int lda, const float *b, int ldb,
                                  float beta, float *c, int ldc) {
  s->dev->ops->gemm(s, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
/* `count` GEMMs, the i-th on a + i stride_a, b + i stride_b, c + i stride_c. */
static inline void dt_device_gemm_strided_batched(dt_stream_t *s, dt_trans ta, dt_trans tb, int m,
                                                  int n, int k, float alpha, const float *a,
                                                  int lda, size_t stride_a, const float *b,
                                                  int ldb, size_t stride_b, float beta, float *c,
                                                  int ldc, size_t stride_c, int count) {
  s->dev->ops->gemm_strided_batched(s, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                                    beta, c, ldc, stride_c, count);
}
/* Every row of y (rows, n; row stride ld) set to v (n). */
static inline void dt_device_broadcast_rows(dt_stream_t *s, size_t rows, int n, size_t ld,
                                            const float *v, float *y) {
  s->dev->ops->broadcast_rows(s, rows, n, ld, v, y);
}
/* out (n) = the column sums of a (rows, n). */
static inline void dt_device_col_sums(dt_stream_t *s, size_t rows, int n, const float *a,
                                      float *out) {
  s->dev->ops->col_sums(s, rows, n, a, out);
}
/* out[i] = a[i] * b[i] */
static inline void dt_device_mul(dt_stream_t *s, size_t n, const float *a, const float *b,
                                 float *out) {
  s->dev->ops->mul(s, n, a, b, out);
}

/* ---- layer kernels ---- */

/* y = f(x) over n values; alpha is leaky ReLU's slope. */
static inline void dt_device_activation_forward(dt_stream_t *s, dt_activation kind, size_t n,
                                                float alpha, const float *x, float *y) {
  s->dev->ops->activation_forward(s, kind, n, alpha, x, y);
}
/* dx = dy f'(x), from x or y = f(x), whichever the function needs. */
static inline void dt_device_activation_backward(dt_stream_t *s, dt_activation kind, size_t n,
                                                 float alpha, const float *x, const float *y,
                                                 const float *dy, float *dx) {
  s->dev->ops->activation_backward(s, kind, n, alpha, x, y, dy, dx);
}
/* Softmax over each of `rows` rows of dim values. */
static inline void dt_device_softmax_forward(dt_stream_t *s, int rows, size_t dim, const float *x,
                                             float *y) {
  s->dev->ops->softmax_forward(s, rows, dim, x, y);
}
static inline void dt_device_softmax_backward(dt_stream_t *s, int rows, size_t dim,
                                              const float *y, const float *dy, float *dx) {
  s->dev->ops->softmax_backward(s, rows, dim, y, dy, dx);
}
/* Inverted dropout in training: mask[i] = 1 / (1 - rate) with probability 1 - rate,
 * else 0, drawn from rng in order; y = x mask. */
static inline void dt_device_dropout_forward(dt_stream_t *s, size_t n, float rate,
                                             dt_rng_t *rng, const float *x, float *y,
                                             float *mask) {
  s->dev->ops->dropout_forward(s, n, rate, rng, x, y, mask);
}
/* y (n, dim): row k is row ids[k] of table (rows, dim), or zeros for an id outside
 * [0, rows) (ids are floats, truncated toward zero). */
static inline void dt_device_embedding_forward(dt_stream_t *s, size_t n, int rows, size_t dim,
                                               const float *ids, const float *table, float *y) {
  s->dev->ops->embedding_forward(s, n, rows, dim, ids, table, y);
}
/* dtable (rows, dim) = the rows of dy added up by id (overwritten). */
static inline void dt_device_embedding_backward(dt_stream_t *s, size_t n, int rows, size_t dim,
                                                const float *ids, const float *dy,
                                                float *dtable) {
  s->dev->ops->embedding_backward(s, n, rows, dim, ids, dy, dtable);
}

/* Floats of workspace the convolution needs for a batch of `batch`. */
static inline size_t dt_device_conv_workspace(const dt_device_t *dev, const dt_conv_desc_t *c,
                                              int batch) {
  return dev->ops->conv_workspace(dev, c, batch);
}
/* y = conv(x, w) + b (b may be NULL). */
static inline void dt_device_conv_forward(dt_stream_t *s, const dt_conv_desc_t *c, int batch,
                                          const float *x, const float *w, const float *b,
                                          float *y, float *work) {
  s->dev->ops->conv_forward(s, c, batch, x, w, b, y, work);
}
/* Overwrites dw, db (unless NULL) and dx (unless NULL) from dy. */
static inline void dt_device_conv_backward(dt_stream_t *s, const dt_conv_desc_t *c, int batch,
                                           const float *x, const float *w, const float *dy,
                                           float *dw, float *db, float *dx, float *work) {
  s->dev->ops->conv_backward(s, c, batch, x, w, dy, dw, db, dx, work);
}
/* Pooling windows of g over (batch, ih, iw, ic) (padded positions take no part); max
 * pooling keeps in idx, per output value, the index of its maximum in the sample. */
static inline void dt_device_pool2d_forward(dt_stream_t *s, dt_pool_kind kind,
                                            const dt_conv_geom_t *g, int batch, const float *x,
                                            float *y, int32_t *idx) {
  s->dev->ops->pool2d_forward(s, kind, g, batch, x, y, idx);
}
static inline void dt_device_pool2d_backward(dt_stream_t *s, dt_pool_kind kind,
                                             const dt_conv_geom_t *g, int batch, const float *dy,
                                             float *dx, const int32_t *idx) {
  s->dev->ops->pool2d_backward(s, kind, g, batch, dy, dx, idx);
}
/* Max or mean of each channel over all `positions` of a sample. */
static inline void dt_device_global_pool_forward(dt_stream_t *s, dt_pool_kind kind, int batch,
                                                 size_t positions, int channels, const float *x,
                                                 float *y, int32_t *idx) {
  s->dev->ops->global_pool_forward(s, kind, batch, positions, channels, x, y, idx);
}
static inline void dt_device_global_pool_backward(dt_stream_t *s, dt_pool_kind kind, int batch,
                                                  size_t positions, int channels,
                                                  const float *dy, float *dx,
                                                  const int32_t *idx) {
  s->dev->ops->global_pool_backward(s, kind, batch, positions, channels, dy, dx, idx);
}

/* Floats of workspace batch normalization needs; it keeps the statistics of the last
 * forward there for backward. */
static inline size_t dt_device_batch_norm_workspace(const dt_device_t *dev, int channels) {
  return dev->ops->batch_norm_workspace(dev, channels);
}
/* y = gamma (x - mean) / sqrt(var + eps) + beta over `total` values (a multiple of the
 * channels); batch statistics that move the moving averages in training, the moving
 * averages otherwise. gamma or beta NULL: 1 or 0. */
static inline void dt_device_batch_norm_forward(dt_stream_t *s, const dt_batch_norm_desc_t *bn,
                                                bool training, size_t total, const float *x,
                                                const float *gamma, const float *beta,
                                                float *moving_mean, float *moving_var, float *y,
                                                float *work) {
  s->dev->ops->batch_norm_forward(s, bn, training, total, x, gamma, beta, moving_mean,
                                  moving_var, y, work);
}
/* Gradients through the last forward (its mode included); dgamma, dbeta, dx may be NULL. */
static inline void dt_device_batch_norm_backward(dt_stream_t *s, const dt_batch_norm_desc_t *bn,
                                                 size_t total, const float *x, const float *dy,
                                                 const float *gamma, float *dgamma, float *dbeta,
                                                 float *dx, float *work) {
  s->dev->ops->batch_norm_backward(s, bn, total, x, dy, gamma, dgamma, dbeta, dx, work);
}

/* Sequences between batch-major rows and time-major blocks. Processing step t reads
 * time step t, or steps - 1 - t with reverse. gather: dst (steps, batch, n) from the
 * rows (batch, steps, width) of src at column offset. scatter: the reverse, writing (or
 * with accumulate adding) src (steps, batch, n) into the rows of dst. */
static inline void dt_device_seq_gather(dt_stream_t *s, int steps, int batch, int n, bool reverse,
                                        const float *src, int width, int offset, float *dst) {
  s->dev->ops->seq_gather(s, steps, batch, n, reverse, src, width, offset, dst);
}
static inline void dt_device_seq_scatter(dt_stream_t *s, int steps, int batch, int n,
                                         bool reverse, const float *src, float *dst, int width,
                                         int offset, bool accumulate) {
  s->dev->ops->seq_scatter(s, steps, batch, n, reverse, src, dst, width, offset, accumulate);
}
static inline void dt_device_rnn_step_forward(dt_stream_t *s, const dt_rnn_step_t *p) {
  s->dev->ops->rnn_step_forward(s, p);
}
static inline void dt_device_rnn_step_backward(dt_stream_t *s, const dt_rnn_step_back_t *p) {
  s->dev->ops->rnn_step_backward(s, p);
}

/* y = the merge of k inputs of n values each (xs: a host array of k device pointers);
 * y may be xs[0] (the model adds gradient contributions so: ADD of {g, part} into g). */
static inline void dt_device_merge_forward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                                           const float *const *xs, float *y) {
  s->dev->ops->merge_forward(s, kind, n, k, xs, y);
}
/* dxs[i] = dL/dx_i from dy (overwritten; NULL entries are skipped); xs and y are the
 * forward's. */
static inline void dt_device_merge_backward(dt_stream_t *s, dt_merge_kind kind, size_t n, int k,
                                            const float *const *xs, const float *y,
                                            const float *dy, float *const *dxs) {
  s->dev->ops->merge_backward(s, kind, n, k, xs, y, dy, dxs);
}
/* rows rows of width floats from src (row stride src_ld) to dst (row stride dst_ld):
 * concatenation places each input's rows at its column offset of the output. */
static inline void dt_device_copy_rows(dt_stream_t *s, size_t rows, size_t width,
                                       const float *src, size_t src_ld, float *dst,
                                       size_t dst_ld) {
  s->dev->ops->copy_rows(s, rows, width, src, src_ld, dst, dst_ld);
}
/* y (batch, h sh, w sw, c): every pixel of x repeated sh x sw times (nearest). */
static inline void dt_device_upsample2d_forward(dt_stream_t *s, const dt_resize2d_t *r,
                                                int batch, const float *x, float *y) {
  s->dev->ops->upsample2d_forward(s, r, batch, x, y);
}
/* dx (batch, h, w, c) = the sums of the sh x sw blocks of dy. */
static inline void dt_device_upsample2d_backward(dt_stream_t *s, const dt_resize2d_t *r,
                                                 int batch, const float *dy, float *dx) {
  s->dev->ops->upsample2d_backward(s, r, batch, dy, dx);
}
/* y (batch, top + h + bottom, left + w + right, c): x surrounded by zeros. */
static inline void dt_device_pad2d_forward(dt_stream_t *s, const dt_resize2d_t *r, int batch,
                                           const float *x, float *y) {
  s->dev->ops->pad2d_forward(s, r, batch, x, y);
}
/* dx (batch, h, w, c) = the inner part of dy (the padding's gradient is dropped). */
static inline void dt_device_pad2d_backward(dt_stream_t *s, const dt_resize2d_t *r, int batch,
                                            const float *dy, float *dx) {
  s->dev->ops->pad2d_backward(s, r, batch, dy, dx);
}

/* The reparameterization of a VAE's sampling layer over rows (samples) of n latent
 * values: eps (rows, n) drawn from rng in order (standard normal), or zeros where rng is
 * NULL; z = mean + exp(log_var / 2) eps; kl (rows) gets each row's KL divergence of
 * N(mean, exp(log_var)) from N(0, 1): -0.5 sum(1 + log_var - mean^2 - exp(log_var)). */
static inline void dt_device_gaussian_sample_forward(dt_stream_t *s, int rows, size_t n,
                                                     dt_rng_t *rng, const float *mean,
                                                     const float *log_var, float *eps, float *z,
                                                     float *kl) {
  s->dev->ops->gaussian_sample_forward(s, rows, n, rng, mean, log_var, eps, z, kl);
}
/* Its backward with kl_scale times the KL terms added to the loss (the KL weight over the
 * batch size, for a loss that is the batch mean): dmean = dz + kl_scale mean, dlog_var =
 * dz eps exp(log_var / 2) / 2 + kl_scale (exp(log_var) - 1) / 2 (both overwritten; either
 * may be NULL). */
static inline void dt_device_gaussian_sample_backward(dt_stream_t *s, int rows, size_t n,
                                                      float kl_scale, const float *mean,
                                                      const float *log_var, const float *eps,
                                                      const float *dz, float *dmean,
                                                      float *dlog_var) {
  s->dev->ops->gaussian_sample_backward(s, rows, n, kl_scale, mean, log_var, eps, dz, dmean,
                                        dlog_var);
}

#endif
