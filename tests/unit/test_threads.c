/* The CPU backend's compute threads (dt_device_set_threads, dt_device_parallel):
 *  - every pool thread flushes denormals itself (the test clears FTZ/DAZ in the
 *    creating thread first, so nothing is inherited), and the caller's mode is left as
 *    it was;
 *  - the parallel-for covers every index exactly once, in at most `threads` contiguous
 *    chunks of at least `grain` (cache-line aligned boundaries), and a parallel-for
 *    started inside one runs on its thread instead of deadlocking;
 *  - the kernels give the same bits at 1, 2 and 3 threads: activations (forward and
 *    backward, every kind), softmax, mul, row broadcast, column sums, 2-d and global
 *    pools, batch norm, the convolution's output and dx, and the optimizer over
 *    ranges; the convolution's dW (summed per thread, then in thread order) matches 1
 *    thread within float rounding and is bit-identical run to run at 2 threads.
 * Sizes are above the kernels' grains so that the work really is split. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/device.h"
#include "dtrain/fpenv.h"
#include "dtrain/optim.h"
#include "dtrain/parallel.h"
#include "dtrain/rng.h"
#include "test_util.h"

static dt_device_t *make(int threads) {
  dt_device_t *dev = NULL;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_device_create(NULL, &dev, &err), 0);
  CHECK_INT_EQ(dt_device_set_threads(dev, threads, &err), 0);
  return dev;
}

static float *randoms(dt_rng_t *rng, size_t n, float lo, float hi) {
  float *a = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * dt_rng_uniform(rng);
  return a;
}

/* ---- the pool threads' floating-point mode ---- */

enum { MAX_CHUNKS = 8 };

typedef struct {
  pthread_mutex_t mu;
  int chunks;
  size_t begin[MAX_CHUNKS];
  pthread_t tid[MAX_CHUNKS];
  bool flushed[MAX_CHUNKS];
} seen_t;

static void record(void *arg, size_t b, size_t e) {
  (void)e;
  seen_t *s = arg;
  pthread_mutex_lock(&s->mu);
  if (s->chunks < MAX_CHUNKS) {
    s->begin[s->chunks] = b;
    s->tid[s->chunks] = pthread_self();
    s->flushed[s->chunks] = dt_fp_denormals_flushed();
  }
  s->chunks++;
  pthread_mutex_unlock(&s->mu);
}

static void test_pool_flushes_denormals(void) {
#if defined(__x86_64__)
  /* Clear FTZ (bit 15) and DAZ (bit 6) here, so that threads created from this one
   * start without them (POSIX: a new thread inherits its creator's mode). */
  dt_fp_mode_t mode = dt_fp_mode_get();
  mode.csr &= ~((1u << 15) | (1u << 6));
  dt_fp_mode_set(mode);
  CHECK(!dt_fp_denormals_flushed());
#endif
  dt_device_t *dev = make(3);
  dt_parallel_t par = dt_device_parallel(dev);
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  dt_parallel_for(&par, 3 * 1024, 16, record, &s);
  CHECK_INT_EQ(s.chunks, 3);
  int on_caller = 0, on_pool = 0;
  for (int i = 0; i < s.chunks && i < MAX_CHUNKS; i++) {
    if (pthread_equal(s.tid[i], pthread_self())) {
      on_caller++;
      CHECK_INT_EQ(s.begin[i], 0); /* the caller runs the first chunk */
      continue;
    }
    on_pool++;
    /* Each pool thread flushed denormals itself. */
#if defined(__x86_64__)
    CHECK(s.flushed[i]);
#endif
    for (int k = 0; k < i; k++) CHECK(!pthread_equal(s.tid[i], s.tid[k]));
  }
  CHECK_INT_EQ(on_caller, 1);
  CHECK_INT_EQ(on_pool, 2);
#if defined(__x86_64__)
  CHECK(!dt_fp_denormals_flushed()); /* the caller's own mode is the caller's */
  dt_fp_flush_denormals();
#endif
  dt_device_destroy(dev);
}

/* ---- the parallel-for's chunks ---- */

typedef struct {
  pthread_mutex_t mu;
  unsigned char *hits;
  int chunks;
  size_t min_len, grain;
  bool aligned;
} cover_t;

static void cover(void *arg, size_t b, size_t e) {
  cover_t *c = arg;
  pthread_mutex_lock(&c->mu);
  c->chunks++;
  if (e - b < c->min_len) c->min_len = e - b;
  if (b % 16 != 0) c->aligned = false;
  for (size_t i = b; i < e; i++) c->hits[i]++;
  pthread_mutex_unlock(&c->mu);
}

static void test_parallel_for_chunks(void) {
  static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4099, 65537};
  static const size_t grains[] = {1, 16, 1000};
  for (int threads = 1; threads <= 3; threads++) {
    dt_device_t *dev = make(threads);
    dt_parallel_t par = dt_device_parallel(dev);
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
      for (size_t gi = 0; gi < sizeof grains / sizeof *grains; gi++) {
        const size_t n = sizes[si], grain = grains[gi];
        cover_t c = {.mu = PTHREAD_MUTEX_INITIALIZER, .hits = calloc(n + 1, 1),
                     .min_len = (size_t)-1, .grain = grain, .aligned = true};
        dt_parallel_for(&par, n, grain, cover, &c);
        size_t once = 0;
        for (size_t i = 0; i < n; i++) once += c.hits[i] == 1;
        CHECK_INT_EQ(once, n);
        CHECK(c.chunks <= threads);
        CHECK(c.aligned);
        /* More than one chunk only when each gets a grain (within the 16-alignment). */
        if (c.chunks > 1) CHECK(c.min_len + 16 >= grain);
        if (n >= 3 * 1024 && grain <= 16) CHECK_INT_EQ(c.chunks, threads);
        free(c.hits);
      }
    dt_device_destroy(dev);
  }
}

typedef struct {
  dt_parallel_t *par;
  cover_t *inner;
} nest_t;

static void nested(void *arg, size_t b, size_t e) {
  nest_t *n = arg;
  (void)b, (void)e;
  dt_parallel_for(n->par, 4096, 16, cover, n->inner);
}

static void test_nested_runs_inline(void) {
  dt_device_t *dev = make(2);
  dt_parallel_t par = dt_device_parallel(dev);
  unsigned char hits[4096] = {0};
  cover_t inner = {.mu = PTHREAD_MUTEX_INITIALIZER, .hits = hits, .min_len = (size_t)-1,
                   .aligned = true};
  nest_t n = {&par, &inner};
  dt_parallel_for(&par, 4096, 16, nested, &n);
  /* Two outer chunks, each running the whole inner range (as 2 chunks in order). */
  size_t twice = 0;
  for (int i = 0; i < 4096; i++) twice += hits[i] == 2;
  CHECK_INT_EQ(twice, 4096);
  CHECK_INT_EQ(inner.chunks, 4);
  dt_device_destroy(dev);
}

/* ---- the kernels at 1, 2 and 3 threads ---- */

enum { N = 3 * 20000 + 7, ROWS = 3001, DIM = 10, CR = 2003, CC = 48, BATCH = 7 };

typedef struct {
  float *all; /* every output that must not depend on the thread count */
  size_t len;
  float *dw;  /* the convolution's dW */
  size_t dw_len;
} outputs_t;

static float *out_slot(outputs_t *o, size_t n) {
  o->all = realloc(o->all, sizeof(float) * (o->len + n));
  float *p = o->all + o->len;
  o->len += n;
  return p;
}

static void run_kernels(int threads, outputs_t *o) {
  dt_device_t *dev = make(threads);
  dt_stream_t *s = dev->stream;
  dt_rng_t rng;
  dt_rng_seed(&rng, 77);
  memset(o, 0, sizeof *o);

  /* Inputs of 2N values: the column sums and pools read more than N. */
  float *x = randoms(&rng, 2 * N, -4.0f, 4.0f), *dy = randoms(&rng, 2 * N, -1.0f, 1.0f);
  static const dt_activation kinds[] = {DT_ACT_RELU, DT_ACT_LEAKY_RELU, DT_ACT_SIGMOID,
                                        DT_ACT_TANH};
  for (int k = 0; k < 4; k++) {
    float *y = out_slot(o, N);
    dt_device_activation_forward(s, kinds[k], N, 0.1f, x, y);
    float *dx = out_slot(o, N);
    dt_device_activation_backward(s, kinds[k], N, 0.1f, x, o->all + o->len - 2 * N, dy, dx);
  }
  float *sm = out_slot(o, (size_t)ROWS * DIM);
  dt_device_softmax_forward(s, ROWS, DIM, x, sm);
  float *smd = out_slot(o, (size_t)ROWS * DIM);
  dt_device_softmax_backward(s, ROWS, DIM, o->all + o->len - 2 * (size_t)ROWS * DIM, dy, smd);
  dt_device_mul(s, N, x, dy, out_slot(o, N));
  dt_device_broadcast_rows(s, CR, CC, CC + 5, x, out_slot(o, (size_t)CR * (CC + 5)));
  dt_device_col_sums(s, CR, CC, x, out_slot(o, CC));

  /* Pools over (BATCH, 24, 24, 16): 2x2 windows (exact tiling) and 3x3 stride 2 with
   * padding (the general backward). */
  const dt_conv_geom_t pg[2] = {
      {.ih = 24, .iw = 24, .ic = 16, .oh = 12, .ow = 12, .oc = 16, .kh = 2, .kw = 2, .sh = 2,
       .sw = 2, .dh = 1, .dw = 1},
      {.ih = 24, .iw = 24, .ic = 16, .oh = 12, .ow = 12, .oc = 16, .kh = 3, .kw = 3, .sh = 2,
       .sw = 2, .dh = 1, .dw = 1, .ph = 1, .pw = 1}};
  const size_t pin = (size_t)BATCH * 24 * 24 * 16, pout = (size_t)BATCH * 12 * 12 * 16;
  int32_t *idx = malloc(sizeof(int32_t) * pin);
  for (int gi = 0; gi < 2; gi++)
    for (int kind = 0; kind < 2; kind++) {
      float *py = out_slot(o, pout);
      dt_device_pool2d_forward(s, (dt_pool_kind)kind, &pg[gi], BATCH, x, py, idx);
      dt_device_pool2d_backward(s, (dt_pool_kind)kind, &pg[gi], BATCH, dy, out_slot(o, pin),
                                idx);
    }
  for (int kind = 0; kind < 2; kind++) {
    dt_device_global_pool_forward(s, (dt_pool_kind)kind, BATCH, 24 * 24, 16, x,
                                  out_slot(o, (size_t)BATCH * 16), idx);
    dt_device_global_pool_backward(s, (dt_pool_kind)kind, BATCH, 24 * 24, 16, dy,
                                   out_slot(o, pin), idx);
  }

  /* Batch norm over 24 channels, training and then evaluation. */
  const dt_batch_norm_desc_t bn = {.channels = 24, .momentum = 0.9, .epsilon = 1e-3f};
  const size_t bnt = N - N % 24;
  float *gamma = randoms(&rng, 24, 0.5f, 1.5f), *beta = randoms(&rng, 24, -1.0f, 1.0f);
  float mm[24] = {0}, mv[24];
  for (int i = 0; i < 24; i++) mv[i] = 1.0f;
  float *bnw = malloc(sizeof(float) * dt_device_batch_norm_workspace(dev, 24));
  for (int training = 1; training >= 0; training--) {
    dt_device_batch_norm_forward(s, &bn, training, bnt, x, gamma, beta, mm, mv,
                                 out_slot(o, bnt), bnw);
    float *grads = out_slot(o, bnt + 48);
    dt_device_batch_norm_backward(s, &bn, bnt, x, dy, gamma, grads + bnt, grads + bnt + 24,
                                  grads, bnw);
  }

  /* A convolution (BATCH, 12, 12, 16) -> (BATCH, 12, 12, 32), 3x3, same padding. */
  const dt_conv_desc_t cd = {.g = {.ih = 12, .iw = 12, .ic = 16, .oh = 12, .ow = 12, .oc = 32,
                                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .dh = 1, .dw = 1,
                                   .ph = 1, .pw = 1}};
  const size_t cin = (size_t)BATCH * 12 * 12 * 16, cout = (size_t)BATCH * 12 * 12 * 32;
  float *w = randoms(&rng, 3 * 3 * 16 * 32, -0.2f, 0.2f), *b = randoms(&rng, 32, -1.0f, 1.0f);
  float *work = malloc(sizeof(float) * dt_device_conv_workspace(dev, &cd, BATCH));
  dt_device_conv_forward(s, &cd, BATCH, x, w, b, out_slot(o, cout), work);
  o->dw_len = 3 * 3 * 16 * 32;
  o->dw = malloc(sizeof(float) * o->dw_len);
  float *cgrads = out_slot(o, cin + 32);
  dt_device_conv_backward(s, &cd, BATCH, x, w, dy, o->dw, cgrads + cin, cgrads, work);
  (void)cout;

  /* The optimizer over a range, with weight decay on some tensors. */
  dt_optim_config_t oc = dt_optim_defaults(DT_OPT_ADAM);
  oc.weight_decay = 0.01;
  dt_optim_t opt;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_optim_init(&opt, &oc, N, &err), 0);
  opt.parallel = dt_device_parallel(dev);
  const dt_param_info_t tensors[2] = {{.offset = 0, .count = 40000, .decay = true},
                                      {.offset = 40000, .count = N - 40000, .decay = false}};
  float *params = out_slot(o, N);
  memcpy(params, x, sizeof(float) * N);
  for (int step = 0; step < 3; step++) {
    dt_optim_begin_step(&opt);
    dt_optim_update(&opt, params, dy, 5, N - 3, 0.01f, tensors, 2);
  }
  dt_optim_free(&opt);

  free(x), free(dy), free(idx), free(gamma), free(beta), free(bnw), free(w), free(b), free(work);
  dt_device_destroy(dev);
}

static void test_kernels_identical(void) {
  outputs_t one, two, three, two_again;
  run_kernels(1, &one);
  run_kernels(2, &two);
  run_kernels(3, &three);
  run_kernels(2, &two_again);
  CHECK_INT_EQ(two.len, one.len);
  CHECK_INT_EQ(three.len, one.len);
  CHECK(memcmp(two.all, one.all, sizeof(float) * one.len) == 0);
  CHECK(memcmp(three.all, one.all, sizeof(float) * one.len) == 0);
  /* Find the first difference, to say where. */
  for (size_t i = 0; i < one.len; i++)
    if (memcmp(&two.all[i], &one.all[i], sizeof(float)) != 0 ||
        memcmp(&three.all[i], &one.all[i], sizeof(float)) != 0) {
      fprintf(stderr, "first difference at output %zu of %zu: %.9g, %.9g, %.9g\n", i, one.len,
              one.all[i], two.all[i], three.all[i]);
      break;
    }
  /* dW: the same sums in another order: within float rounding of the 7 * 144 terms. */
  double worst = 0.0;
  for (size_t i = 0; i < one.dw_len; i++) {
    double d = fabs((double)two.dw[i] - one.dw[i]) / (fabs((double)one.dw[i]) + 1.0);
    if (d > worst) worst = d;
    d = fabs((double)three.dw[i] - one.dw[i]) / (fabs((double)one.dw[i]) + 1.0);
    if (d > worst) worst = d;
  }
  CHECK_NEAR(worst, 0.0, 1e-4);
  CHECK(memcmp(two.dw, two_again.dw, sizeof(float) * one.dw_len) == 0);
  CHECK(memcmp(two.all, two_again.all, sizeof(float) * one.len) == 0);
  outputs_t *all[] = {&one, &two, &three, &two_again};
  for (int i = 0; i < 4; i++) free(all[i]->all), free(all[i]->dw);
}

/* set_threads back to 1 and up again on a live device; the count is what was set. */
static void test_resize(void) {
  dt_device_t *dev = make(3);
  dt_error_t err = {0};
  dt_parallel_t par = dt_device_parallel(dev);
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  CHECK_INT_EQ(dt_device_set_threads(dev, 1, &err), 0);
  dt_parallel_for(&par, 4096, 16, record, &s);
  CHECK_INT_EQ(s.chunks, 1);
  CHECK_INT_EQ(dt_device_set_threads(dev, 2, &err), 0);
  s.chunks = 0;
  dt_parallel_for(&par, 4096, 16, record, &s);
  CHECK_INT_EQ(s.chunks, 2);
  dt_device_destroy(dev);
}

int main(void) {
  test_pool_flushes_denormals();
  test_parallel_for_chunks();
  test_nested_runs_inline();
  test_kernels_identical();
  test_resize();
  return test_summary("test_threads");
}
