/* The CPU backend's table: memory (host memory, 64-byte aligned), streams and events
 * that have nothing to wait for, copies and fills, and the kernels of the other cpu/
 * files. */
#include "cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN_BYTES = 64 };

static void destroy(dt_device_t *dev) {
  dt_cpu_state_t *st = dev->state;
  if (st) {
    dt_cpu_pool_destroy(st->pool);
    dt_cpu_dnnl_destroy(st->dnnl);
  }
  free(dev->state);
  dev->state = NULL;
}

static int alloc(dt_device_t *dev, size_t bytes, void **p, dt_error_t *err) {
  (void)dev;
  /* aligned_alloc wants a multiple of the alignment; an empty buffer still gets a
   * distinct pointer. */
  size_t rounded = (bytes + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES;
  *p = aligned_alloc(ALIGN_BYTES, rounded ? rounded : ALIGN_BYTES);
  if (!*p)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory allocating %zu MB on the CPU",
                        bytes >> 20);
  return 0;
}

static void release(dt_device_t *dev, void *p) {
  (void)dev;
  free(p);
}

/* OpenBLAS keeps its own threads for the GEMMs; the pool is for our loops. A pool of
 * the same size is kept as it is. */
static int set_threads(dt_device_t *dev, int threads, dt_error_t *err) {
  dt_cpu_state_t *st = dev->state;
  if (threads < 1) threads = 1;
  openblas_set_num_threads(threads);
  dt_cpu_dnnl_set_threads(st->dnnl, threads);
  if (dt_cpu_pool_threads(st->pool) == threads) return 0;
  dt_cpu_pool_t *pool;
  int rc = dt_cpu_pool_create(threads, &pool, err);
  if (rc) return rc;
  dt_cpu_pool_destroy(st->pool);
  st->pool = pool;
  return 0;
}

/* auto is oneDNN (bench/bench_bf16.sh measured it faster than im2col on this project's
 * CNN; docs/configuration.md has the numbers), or im2col on OpenBLAS where the conv_blas
 * test switch is set (the tests of that path); bf16 runs only on oneDNN. */
static int set_math(dt_device_t *dev, const dt_device_math_t *m, dt_error_t *err) {
  dt_cpu_state_t *st = dev->state;
  const bool bf16 = m->precision == DT_PRECISION_BF16;
  if (bf16 && (st->no_bf16 || !dt_cpu_dnnl_has_bf16()))
    return dt_error_set(err, DT_ERR_CONFIG,
                        "bf16 needs a CPU with bfloat16 arithmetic (AVX-512 BF16 or AMX), "
                        "and this one has none (oneDNN's instruction set here: %s%s)",
                        st->no_bf16 ? "pretended off by DT_TEST_NO_BF16, really " : "",
                        dt_cpu_dnnl_isa_name());
  if (bf16 && m->conv == DT_CONV_IM2COL)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "bf16 convolutions run on oneDNN only: set train.conv = auto or onednn");
  st->bf16 = bf16;
  st->conv_onednn = m->conv == DT_CONV_ONEDNN || (m->conv == DT_CONV_AUTO && !st->conv_blas);
  return 0;
}

static void params_begin(dt_device_t *dev, const float *params, size_t n) {
  dt_cpu_dnnl_params_begin(((dt_cpu_state_t *)dev->state)->dnnl, params, n);
}

static void parallel_run(void *ctx, size_t n, size_t grain, dt_range_fn fn, void *arg) {
  dt_cpu_pool_for(((dt_cpu_state_t *)ctx)->pool, n, grain, DT_CPU_ALIGN_FLOATS, fn, arg);
}

static dt_parallel_t parallel(dt_device_t *dev) {
  return (dt_parallel_t){.run = parallel_run, .ctx = dev->state};
}

static int synchronize(dt_device_t *dev, dt_error_t *err) {
  (void)dev, (void)err;
  return 0;
}

static int stream_init(dt_stream_t *s, dt_error_t *err) {
  (void)err;
  s->impl = NULL;
  return 0;
}

static void stream_release(dt_stream_t *s) { (void)s; }

static int stream_synchronize(dt_stream_t *s, dt_error_t *err) {
  (void)s, (void)err;
  return 0;
}

static int event_init(dt_device_event_t *e, dt_error_t *err) {
  (void)err;
  e->impl = NULL;
  return 0;
}

static void event_release(dt_device_event_t *e) { (void)e; }

/* The work launched before the record has finished already. */
static void event_record(dt_device_event_t *e, dt_stream_t *s) { (void)e, (void)s; }

static void stream_wait_event(dt_stream_t *s, dt_device_event_t *e) { (void)s, (void)e; }

static int event_query(dt_device_event_t *e, bool *done, dt_error_t *err) {
  (void)e, (void)err;
  *done = true;
  return 0;
}

static int event_synchronize(dt_device_event_t *e, dt_error_t *err) {
  (void)e, (void)err;
  return 0;
}

static void copy(dt_stream_t *s, void *dst, const void *src, size_t bytes, dt_copy_kind kind) {
  (void)s, (void)kind;
  memcpy(dst, src, bytes);
}

static void fill(dt_stream_t *s, float *x, size_t n, float value) {
  (void)s;
  if (value == 0.0f && !signbit(value)) {
    memset(x, 0, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) x[i] = value;
}

static const dt_device_ops_t cpu_ops = {
    .name = "cpu",
    .destroy = destroy,
    .alloc = alloc,
    .free = release,
    .set_threads = set_threads,
    .parallel = parallel,
    .synchronize = synchronize,
    .stream_init = stream_init,
    .stream_release = stream_release,
    .stream_synchronize = stream_synchronize,
    .event_init = event_init,
    .event_release = event_release,
    .event_record = event_record,
    .stream_wait_event = stream_wait_event,
    .event_query = event_query,
    .event_synchronize = event_synchronize,
    .copy = copy,
    .fill = fill,
    .gemm = dt_cpu_gemm,
    .gemm_strided_batched = dt_cpu_gemm_strided_batched,
    .broadcast_rows = dt_cpu_broadcast_rows,
    .col_sums = dt_cpu_col_sums,
    .mul = dt_cpu_mul,
    .activation_forward = dt_cpu_activation_forward,
    .activation_backward = dt_cpu_activation_backward,
    .softmax_forward = dt_cpu_softmax_forward,
    .softmax_backward = dt_cpu_softmax_backward,
    .dropout_forward = dt_cpu_dropout_forward,
    .embedding_forward = dt_cpu_embedding_forward,
    .embedding_backward = dt_cpu_embedding_backward,
    .conv_workspace = dt_cpu_conv_workspace,
    .conv_forward = dt_cpu_conv_forward,
    .conv_backward = dt_cpu_conv_backward,
    .pool2d_forward = dt_cpu_pool2d_forward,
    .pool2d_backward = dt_cpu_pool2d_backward,
    .global_pool_forward = dt_cpu_global_pool_forward,
    .global_pool_backward = dt_cpu_global_pool_backward,
    .batch_norm_workspace = dt_cpu_batch_norm_workspace,
    .batch_norm_forward = dt_cpu_batch_norm_forward,
    .batch_norm_backward = dt_cpu_batch_norm_backward,
    .seq_gather = dt_cpu_seq_gather,
    .seq_scatter = dt_cpu_seq_scatter,
    .rnn_step_forward = dt_cpu_rnn_step_forward,
    .rnn_step_backward = dt_cpu_rnn_step_backward,
    .merge_forward = dt_cpu_merge_forward,
    .merge_backward = dt_cpu_merge_backward,
    .copy_rows = dt_cpu_copy_rows,
    .upsample2d_forward = dt_cpu_upsample2d_forward,
    .upsample2d_backward = dt_cpu_upsample2d_backward,
    .pad2d_forward = dt_cpu_pad2d_forward,
    .pad2d_backward = dt_cpu_pad2d_backward,
    .set_math = set_math,
    .gaussian_sample_forward = dt_cpu_gaussian_sample_forward,
    .gaussian_sample_backward = dt_cpu_gaussian_sample_backward,
    .params_begin = params_begin,
};

/* Whether this CPU runs AVX-512F code (the convolution kernels' instruction set). */
static bool has_avx512f(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

int dt_cpu_device_init(dt_device_t *dev, const dt_device_options_t *opt, dt_error_t *err) {
  dt_cpu_state_t *st = calloc(1, sizeof *st);
  if (!st) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating the CPU device");
  st->conv_kernels = !opt->cpu.conv_blas && has_avx512f();
  st->no_bf16 = opt->cpu.no_bf16;
  st->conv_blas = opt->cpu.conv_blas;
  st->conv_onednn = !st->conv_blas; /* train.conv = auto until set_math says otherwise */
  int rc = dt_cpu_pool_create(1, &st->pool, err);
  if (!rc && (rc = dt_cpu_dnnl_create(&st->dnnl, err))) dt_cpu_pool_destroy(st->pool);
  if (rc) {
    free(st);
    return rc;
  }
  dt_cpu_dnnl_set_threads(st->dnnl, 1);
  dev->ops = &cpu_ops;
  dev->kind = DT_DEVICE_CPU;
  dev->host_memory = true;
  dev->state = st;
  return 0;
}
