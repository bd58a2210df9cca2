/* The CPU backend's oneDNN path: convolutions (forward, backward-data, backward-
 * weights, and the transposed convolution from the same three primitives) and the
 * bfloat16 GEMMs of train.precision = bf16, through Debian's libdnnl (oneDNN 2.6).
 *
 * Primitives are made once per shape and kept in a cache on the device: a convolution's
 * when its workspace is sized (dt_cpu_conv_workspace, before the first step), a GEMM's
 * the first time its shape is seen (dense layers have no sizing call; every later step
 * finds it). Activations stay in our channels-last layout (oneDNN's nhwc), so they are
 * never reordered in fp32; the kernel tensor is Keras' (kh, kw, cin, cout), oneDNN's
 * hwio, and is reordered into the layout the primitive picked (and its gradient back)
 * when that differs. In bf16 the inputs of every primitive (activations, gradients,
 * weights) are reordered to bfloat16 (round to nearest even) into buffers the cache
 * entry owns, and the outputs stay float32: fp32 accumulation, fp32 master weights.
 *
 * Threads: Debian builds oneDNN with the OpenMP runtime (libgomp; DNNL_CPU_RUNTIME is
 * DNNL_RUNTIME_OMP), which takes its thread count from the calling thread's
 * omp_set_num_threads; every execution sets it to the device's compute threads
 * first. oneDNN's results then depend only on the thread count and the CPU's ISA, as
 * ours do. The OpenMP threads flush denormals like every other computing thread. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "dtrain/fpenv.h"

#include <oneapi/dnnl/dnnl.h>

/* ---- the cache ---- */

typedef struct {
  dnnl_primitive_t prim;
  dnnl_memory_t mem_from, mem_to; /* reorder endpoints */
} reorder_t;

/* One convolution shape. "big" is the image (ih, iw, ic) of the geometry, "small" the
 * image (oh, ow, oc); a plain layer goes big -> small, a transposed one small -> big. */
typedef struct {
  dt_conv_geom_t g;
  bool transpose, bf16;
  int batch;
  bool ok; /* primitives made; false: oneDNN could not, the caller runs im2col */
  dnnl_primitive_t fwd, bwd_data, bwd_w;
  /* Memories bound to each primitive's arguments; handles set per call. */
  dnnl_memory_t f_src, f_wei, f_bias, f_dst;
  dnnl_memory_t d_ddst, d_wei, d_dsrc;
  dnnl_memory_t w_src, w_ddst, w_dwei;
  /* Reorders: the user's kernel into the forward and backward-data primitives' weights
   * (NULL prim: none needed), their gradient back into the user's, and in bf16 the two
   * images into bfloat16. */
  reorder_t wei_fwd, wei_bwd, dwei_out, big16, small16;
  void *buf_wei_fwd, *buf_wei_bwd, *buf_dwei, *buf_big, *buf_small;
  float *zero_bias; /* (oc) zeros, for a plain layer without a bias */
} conv_entry_t;

/* One bf16 GEMM shape: C = alpha op(A) op(B) + beta C. */
typedef struct {
  dt_trans ta, tb;
  int m, n, k, lda, ldb, ldc;
  float alpha, beta;
  bool ok;
  dnnl_primitive_t mm;
  dnnl_memory_t m_src, m_wei, m_dst;
  reorder_t a16, b16;
  void *buf_a, *buf_b;
} gemm_entry_t;

/* Parameter buffers named by params_begin (dtrain/device.h): their values hold until
 * the next params_begin of the same buffer, whose stamp then changes. */
typedef struct {
  const float *base;
  size_t n;
  uint64_t stamp;
} param_range_t;

/* The bf16 copy of an fp32 parameter matrix (rows x cols, row stride ld, row-major),
 * compact in the same memory order, made under the range stamp `stamp`: valid while
 * the range still has that stamp. */
typedef struct {
  const float *ptr;
  int rows, cols, ld;
  uint64_t stamp;
  void *buf;
} param_copy_t;

enum { MAX_PARAM_RANGES = 8 };

struct dt_cpu_dnnl {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  int threads;
  param_range_t ranges[MAX_PARAM_RANGES];
  int nranges;
  uint64_t stamps; /* the last stamp given out */
  param_copy_t *copies;
  size_t ncopies, capcopies;
  conv_entry_t **convs;
  size_t nconvs, capconvs;
  gemm_entry_t **gemms;
  size_t ngemms, capgemms;
};

/* ---- setup ---- */

int dt_cpu_dnnl_create(dt_cpu_dnnl_t **out, dt_error_t *err) {
  *out = NULL;
  dt_cpu_dnnl_t *d = calloc(1, sizeof *d);
  if (!d) return dt_error_set(err, DT_ERR_NOMEM, "out of memory creating the oneDNN state");
  d->threads = 1;
  if (dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags) != dnnl_success) {
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
    return dt_error_set(err, DT_ERR_STATE, "cpu/dnnl.c: could not create oneDNN's CPU engine");
  }
  *out = d;
  return 0;
}

static void reorder_release(reorder_t *r) {
  if (r->prim) dnnl_primitive_destroy(r->prim);
  if (r->mem_from) dnnl_memory_destroy(r->mem_from);
  if (r->mem_to) dnnl_memory_destroy(r->mem_to);
}

static void mem_release(dnnl_memory_t m) {
  if (m) dnnl_memory_destroy(m);
}

static void conv_release(conv_entry_t *e) {
  if (!e) return;
  dnnl_primitive_t prims[] = {e->fwd, e->bwd_data, e->bwd_w};
  for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
    if (prims[i]) dnnl_primitive_destroy(prims[i]);
  dnnl_memory_t mems[] = {e->f_src,  e->f_wei, e->f_bias, e->f_dst, e->d_ddst,
                          e->d_wei,  e->d_dsrc, e->w_src, e->w_ddst, e->w_dwei};
  for (size_t i = 0; i < sizeof mems / sizeof *mems; i++) mem_release(mems[i]);
  reorder_release(&e->wei_fwd);
  reorder_release(&e->wei_bwd);
  reorder_release(&e->dwei_out);
  reorder_release(&e->big16);
  reorder_release(&e->small16);
  free(e->buf_wei_fwd);
  free(e->buf_wei_bwd);
  free(e->buf_dwei);
  free(e->buf_big);
  free(e->buf_small);
  free(e->zero_bias);
  free(e);
}

static void gemm_release(gemm_entry_t *e) {
  if (!e) return;
  if (e->mm) dnnl_primitive_destroy(e->mm);
  mem_release(e->m_src);
  mem_release(e->m_wei);
  mem_release(e->m_dst);
  reorder_release(&e->a16);
  reorder_release(&e->b16);
  free(e->buf_a);
  free(e->buf_b);
  free(e);
}

void dt_cpu_dnnl_destroy(dt_cpu_dnnl_t *d) {
  if (!d) return;
  for (size_t i = 0; i < d->ncopies; i++) free(d->copies[i].buf);
  free(d->copies);
  for (size_t i = 0; i < d->nconvs; i++) conv_release(d->convs[i]);
  for (size_t i = 0; i < d->ngemms; i++) gemm_release(d->gemms[i]);
  free(d->convs);
  free(d->gemms);
  dnnl_stream_destroy(d->stream);
  dnnl_engine_destroy(d->engine);
  free(d);
}

void dt_cpu_dnnl_set_threads(dt_cpu_dnnl_t *d, int threads) {
  d->threads = threads < 1 ? 1 : threads;
  omp_set_num_threads(d->threads);
  /* Start OpenMP's threads now and set their floating-point mode: they keep it for
   * their whole life (libgomp reuses them for every later parallel region). Thread 0
   * is the caller, whose mode is the caller's business. */
#pragma omp parallel num_threads(d->threads)
  if (omp_get_thread_num() != 0) dt_fp_flush_denormals();
}

bool dt_cpu_dnnl_has_bf16(void) {
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  /* ISA values are bit sets: each one holds the bits of those it extends. */
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *dt_cpu_dnnl_isa_name(void) {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "other";
  }
}

/* ---- helpers ---- */

#define TRY(call)                              \
  do {                                         \
    if ((call) != dnnl_success) goto fail;     \
  } while (0)

static void *buffer_for(const dnnl_memory_desc_t *md) {
  size_t bytes = dnnl_memory_desc_get_size(md);
  bytes = (bytes + 63) / 64 * 64;
  return aligned_alloc(64, bytes ? bytes : 64);
}

static dnnl_status_t memory_of(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                               void *handle) {
  return dnnl_memory_create(m, md, eng, handle ? handle : DNNL_MEMORY_NONE);
}

/* A reorder from `from` to `to` (the second gets the buffer *buf, allocated here),
 * unless they are the same layout and type. */
static dnnl_status_t reorder_make(dt_cpu_dnnl_t *d, reorder_t *r, const dnnl_memory_desc_t *from,
                                  const dnnl_memory_desc_t *to, void **buf) {
  if (dnnl_memory_desc_equal(from, to)) return dnnl_success;
  if (!(*buf = buffer_for(to))) return dnnl_out_of_memory;
  dnnl_primitive_desc_t pd;
  dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, NULL);
  if (st != dnnl_success) return st;
  st = dnnl_primitive_create(&r->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st != dnnl_success) return st;
  if ((st = memory_of(&r->mem_from, from, d->engine, NULL)) != dnnl_success) return st;
  return memory_of(&r->mem_to, to, d->engine, *buf);
}

static void execute(dt_cpu_dnnl_t *d, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
  dnnl_primitive_execute(p, d->stream, nargs, args);
  dnnl_stream_wait(d->stream);
}

/* Runs r on `from` and returns where the result is: the reorder's buffer, or `from`
 * itself when no reorder is needed. */
static void *reorder_run(dt_cpu_dnnl_t *d, reorder_t *r, const void *from, void *buf) {
  if (!r->prim) return (void *)from;
  dnnl_memory_set_data_handle(r->mem_from, (void *)from);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, r->mem_from}, {DNNL_ARG_TO, r->mem_to}};
  execute(d, r->prim, 2, args);
  return buf;
}

/* Reorders r's buffer out into `to` (the gradient of the weights). */
static void reorder_out(dt_cpu_dnnl_t *d, reorder_t *r, void *to) {
  dnnl_memory_set_data_handle(r->mem_to, to);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, r->mem_from}, {DNNL_ARG_TO, r->mem_to}};
  execute(d, r->prim, 2, args);
}

static dnnl_status_t query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what,
                              dnnl_memory_desc_t *md) {
  const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md(pd, what, 0);
  if (!q) return dnnl_invalid_arguments;
  *md = *q;
  return dnnl_success;
}

/* ---- convolutions ---- */

static bool conv_key_equal(const conv_entry_t *e, const dt_conv_desc_t *c, int batch, bool bf16) {
  return e->batch == batch && e->bf16 == bf16 && e->transpose == c->transpose &&
         memcmp(&e->g, &c->g, sizeof e->g) == 0;
}

/* Makes the three primitives of e (its key filled in). */
static bool conv_make(dt_cpu_dnnl_t *d, conv_entry_t *e) {
  const dt_conv_geom_t *g = &e->g;
  const dnnl_data_type_t in_t = e->bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_primitive_desc_t fpd = NULL, bpd = NULL, wpd = NULL; /* before any goto fail */
  const dnnl_dims_t big = {e->batch, g->ic, g->ih, g->iw};
  const dnnl_dims_t small = {e->batch, g->oc, g->oh, g->ow};
  const dnnl_dims_t wdims = {g->oc, g->ic, g->kh, g->kw};
  const dnnl_dims_t bdims = {g->oc};
  const dnnl_dims_t strides = {g->sh, g->sw}, dil = {g->dh - 1, g->dw - 1};
  const dnnl_dims_t pad_l = {g->ph, g->pw};
  /* The padding after: what makes the output extent come out, never negative (a
   * stride that leaves input rows unread needs none). */
  dnnl_dims_t pad_r = {(g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1 - g->ih - g->ph,
                       (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->iw - g->pw};
  for (int i = 0; i < 2; i++)
    if (pad_r[i] < 0) pad_r[i] = 0;

  dnnl_memory_desc_t big_f, small_f, big_in, small_in, wei_user, wei_any_in, wei_any_f, bias_md;
  TRY(dnnl_memory_desc_init_by_tag(&big_f, 4, big, dnnl_f32, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&small_f, 4, small, dnnl_f32, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&big_in, 4, big, in_t, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&small_in, 4, small, in_t, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&wei_user, 4, wdims, dnnl_f32, dnnl_hwio));
  TRY(dnnl_memory_desc_init_by_tag(&wei_any_in, 4, wdims, in_t, dnnl_format_tag_any));
  TRY(dnnl_memory_desc_init_by_tag(&wei_any_f, 4, wdims, dnnl_f32, dnnl_format_tag_any));
  TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bdims, dnnl_f32, dnnl_x));

  /* Forward: big -> small, with the bias for a plain layer. */
  dnnl_convolution_desc_t fd, bd, wd;
  TRY(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                 dnnl_convolution_direct, &big_in, &wei_any_in,
                                                 e->transpose ? NULL : &bias_md, &small_f,
                                                 strides, dil, pad_l, pad_r));
  TRY(dnnl_primitive_desc_create(&fpd, &fd, NULL, d->engine, NULL));
  TRY(dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &big_f,
                                                       &wei_any_in, &small_in, strides, dil,
                                                       pad_l, pad_r));
  TRY(dnnl_primitive_desc_create(&bpd, &bd, NULL, d->engine, fpd));
  TRY(dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &big_in,
                                                          &wei_any_f, NULL, &small_in, strides,
                                                          dil, pad_l, pad_r));
  TRY(dnnl_primitive_desc_create(&wpd, &wd, NULL, d->engine, fpd));
  TRY(dnnl_primitive_create(&e->fwd, fpd));
  TRY(dnnl_primitive_create(&e->bwd_data, bpd));
  TRY(dnnl_primitive_create(&e->bwd_w, wpd));

  dnnl_memory_desc_t fw, bw, ww;
  TRY(query_md(fpd, dnnl_query_weights_md, &fw));
  TRY(query_md(bpd, dnnl_query_weights_md, &bw));
  TRY(query_md(wpd, dnnl_query_diff_weights_md, &ww));
  TRY(reorder_make(d, &e->wei_fwd, &wei_user, &fw, &e->buf_wei_fwd));
  TRY(reorder_make(d, &e->wei_bwd, &wei_user, &bw, &e->buf_wei_bwd));
  /* The weights' gradient: into a buffer of the primitive's layout, then out to the
   * user's (reorder_make's buffer is the destination's; here it is the source's). */
  if (!dnnl_memory_desc_equal(&ww, &wei_user)) {
    dnnl_primitive_desc_t rpd;
    if (!(e->buf_dwei = buffer_for(&ww))) goto fail;
    TRY(dnnl_reorder_primitive_desc_create(&rpd, &ww, d->engine, &wei_user, d->engine, NULL));
    dnnl_status_t st = dnnl_primitive_create(&e->dwei_out.prim, rpd);
    dnnl_primitive_desc_destroy(rpd);
    TRY(st);
    TRY(memory_of(&e->dwei_out.mem_from, &ww, d->engine, e->buf_dwei));
    TRY(memory_of(&e->dwei_out.mem_to, &wei_user, d->engine, NULL));
  }
  if (e->bf16) {
    TRY(reorder_make(d, &e->big16, &big_f, &big_in, &e->buf_big));
    TRY(reorder_make(d, &e->small16, &small_f, &small_in, &e->buf_small));
  }
  if (!(e->zero_bias = calloc((size_t)g->oc, sizeof(float)))) goto fail;
  TRY(memory_of(&e->f_src, &big_in, d->engine, e->bf16 ? e->buf_big : NULL));
  TRY(memory_of(&e->f_wei, &fw, d->engine, e->buf_wei_fwd));
  TRY(memory_of(&e->f_bias, &bias_md, d->engine, NULL));
  TRY(memory_of(&e->f_dst, &small_f, d->engine, NULL));
  TRY(memory_of(&e->d_ddst, &small_in, d->engine, e->bf16 ? e->buf_small : NULL));
  TRY(memory_of(&e->d_wei, &bw, d->engine, e->buf_wei_bwd));
  TRY(memory_of(&e->d_dsrc, &big_f, d->engine, NULL));
  TRY(memory_of(&e->w_src, &big_in, d->engine, e->bf16 ? e->buf_big : NULL));
  TRY(memory_of(&e->w_ddst, &small_in, d->engine, e->bf16 ? e->buf_small : NULL));
  TRY(memory_of(&e->w_dwei, &ww, d->engine, e->buf_dwei));
  dnnl_primitive_desc_destroy(fpd);
  dnnl_primitive_desc_destroy(bpd);
  dnnl_primitive_desc_destroy(wpd);
  return true;
fail:
  if (fpd) dnnl_primitive_desc_destroy(fpd);
  if (bpd) dnnl_primitive_desc_destroy(bpd);
  if (wpd) dnnl_primitive_desc_destroy(wpd);
  return false;
}

static conv_entry_t *conv_find(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16) {
  for (size_t i = 0; i < d->nconvs; i++)
    if (conv_key_equal(d->convs[i], c, batch, bf16)) return d->convs[i];
  return NULL;
}

/* The entry of this shape, made if new; NULL where oneDNN cannot run it (the failure
 * is remembered too, so it is tried once). */
static conv_entry_t *conv_get(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16) {
  conv_entry_t *e = conv_find(d, c, batch, bf16);
  if (e) return e->ok ? e : NULL;
  if (d->nconvs == d->capconvs) {
    size_t cap = d->capconvs ? 2 * d->capconvs : 8;
    conv_entry_t **p = realloc(d->convs, cap * sizeof *p);
    if (!p) return NULL;
    d->convs = p;
    d->capconvs = cap;
  }
  if (!(e = calloc(1, sizeof *e))) return NULL;
  e->g = c->g;
  e->transpose = c->transpose;
  e->bf16 = bf16;
  e->batch = batch;
  e->ok = conv_make(d, e);
  if (!e->ok) {
    /* Keep only the key: the half-made primitives are of no use. */
    conv_entry_t *key = calloc(1, sizeof *key);
    conv_release(e);
    if (!key) return NULL;
    key->g = c->g, key->transpose = c->transpose, key->bf16 = bf16, key->batch = batch;
    e = key;
  }
  d->convs[d->nconvs++] = e;
  return e->ok ? e : NULL;
}

bool dt_cpu_dnnl_conv_prepare(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16) {
  return conv_get(d, c, batch, bf16) != NULL;
}

/* The primitives by role; `in` pointers are fp32 user data, reordered to bf16 first
 * in bf16. */
static void run_fwd(dt_cpu_dnnl_t *d, conv_entry_t *e, const float *big, const float *w,
                    const float *b, float *small) {
  void *src = e->bf16 ? reorder_run(d, &e->big16, big, e->buf_big) : (void *)big;
  void *wei = reorder_run(d, &e->wei_fwd, w, e->buf_wei_fwd);
  dnnl_memory_set_data_handle(e->f_src, src);
  dnnl_memory_set_data_handle(e->f_wei, wei);
  dnnl_memory_set_data_handle(e->f_dst, small);
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, e->f_src}, {DNNL_ARG_WEIGHTS, e->f_wei}, {DNNL_ARG_DST, e->f_dst}};
  int n = 3;
  if (!e->transpose) {
    /* The plain layer's primitive has a bias argument: zeros for a layer without one. */
    dnnl_memory_set_data_handle(e->f_bias, b ? (void *)b : e->zero_bias);
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->f_bias};
  }
  execute(d, e->fwd, n, args);
}

static void run_bwd_data(dt_cpu_dnnl_t *d, conv_entry_t *e, const float *small, const float *w,
                         float *big) {
  void *ddst = e->bf16 ? reorder_run(d, &e->small16, small, e->buf_small) : (void *)small;
  void *wei = reorder_run(d, &e->wei_bwd, w, e->buf_wei_bwd);
  dnnl_memory_set_data_handle(e->d_ddst, ddst);
  dnnl_memory_set_data_handle(e->d_wei, wei);
  dnnl_memory_set_data_handle(e->d_dsrc, big);
  const dnnl_exec_arg_t args[] = {
      {DNNL_ARG_DIFF_DST, e->d_ddst}, {DNNL_ARG_WEIGHTS, e->d_wei}, {DNNL_ARG_DIFF_SRC, e->d_dsrc}};
  execute(d, e->bwd_data, 3, args);
}

static void run_bwd_w(dt_cpu_dnnl_t *d, conv_entry_t *e, const float *big, const float *small,
                      float *dw) {
  void *src = e->bf16 ? reorder_run(d, &e->big16, big, e->buf_big) : (void *)big;
  void *ddst = e->bf16 ? reorder_run(d, &e->small16, small, e->buf_small) : (void *)small;
  dnnl_memory_set_data_handle(e->w_src, src);
  dnnl_memory_set_data_handle(e->w_ddst, ddst);
  if (!e->dwei_out.prim) dnnl_memory_set_data_handle(e->w_dwei, dw);
  const dnnl_exec_arg_t args[] = {
      {DNNL_ARG_SRC, e->w_src}, {DNNL_ARG_DIFF_DST, e->w_ddst}, {DNNL_ARG_DIFF_WEIGHTS, e->w_dwei}};
  execute(d, e->bwd_w, 3, args);
  if (e->dwei_out.prim) reorder_out(d, &e->dwei_out, dw);
}

bool dt_cpu_dnnl_conv_forward(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16,
                              const float *x, const float *w, const float *b, float *y) {
  conv_entry_t *e = conv_get(d, c, batch, bf16);
  if (!e) return false;
  omp_set_num_threads(d->threads);
  if (!c->transpose) {
    run_fwd(d, e, x, w, b, y);
    return true;
  }
  run_bwd_data(d, e, x, w, y);
  if (b) {
    const size_t pos = (size_t)batch * c->g.ih * c->g.iw, ic = (size_t)c->g.ic;
    for (size_t i = 0; i < pos; i++)
      for (size_t j = 0; j < ic; j++) y[i * ic + j] += b[j];
  }
  return true;
}

bool dt_cpu_dnnl_conv_backward(dt_cpu_dnnl_t *d, const dt_conv_desc_t *c, int batch, bool bf16,
                               const float *x, const float *w, const float *dy, float *dw,
                               float *dx) {
  conv_entry_t *e = conv_get(d, c, batch, bf16);
  if (!e) return false;
  omp_set_num_threads(d->threads);
  if (!c->transpose) {
    run_bwd_w(d, e, x, dy, dw);
    if (dx) run_bwd_data(d, e, dy, w, dx);
    return true;
  }
  run_bwd_w(d, e, dy, x, dw);
  if (dx) {
    /* The forward primitive of the transposed layer has no bias argument. */
    run_fwd(d, e, dy, w, NULL, dx);
  }
  return true;
}

/* ---- parameter copies ---- */

static bool overlaps(const param_range_t *r, const float *base, size_t n) {
  return base < r->base + r->n && r->base < base + n;
}

/* Drops the copies of parameters inside ranges that overlap [base, base + n). */
static void drop_copies(dt_cpu_dnnl_t *d, const float *base, size_t n) {
  size_t kept = 0;
  for (size_t i = 0; i < d->ncopies; i++) {
    param_copy_t *c = &d->copies[i];
    if (c->ptr < base + n && base <= c->ptr) {
      free(c->buf);
      continue;
    }
    d->copies[kept++] = *c;
  }
  d->ncopies = kept;
}

void dt_cpu_dnnl_params_begin(dt_cpu_dnnl_t *d, const float *params, size_t n) {
  /* A range that overlaps this one otherwise (a freed model's buffer) is replaced, its
   * copies dropped. */
  int kept = 0;
  for (int i = 0; i < d->nranges; i++) {
    param_range_t *r = &d->ranges[i];
    if (n && r->base == params && r->n == n) {
      /* The same buffer again (every step): a new stamp makes its copies stale, and
       * they keep their memory. */
      r->stamp = ++d->stamps;
      return;
    }
    if (params && overlaps(r, params, n ? n : 1)) {
      drop_copies(d, r->base, r->n);
      continue;
    }
    d->ranges[kept++] = *r;
  }
  d->nranges = kept;
  if (!params || n == 0) return; /* forget the buffer */
  if (d->nranges == MAX_PARAM_RANGES) {
    /* The oldest buffer goes: its parameters are converted on every use again. */
    drop_copies(d, d->ranges[0].base, d->ranges[0].n);
    memmove(d->ranges, d->ranges + 1, sizeof *d->ranges * (MAX_PARAM_RANGES - 1));
    d->nranges--;
  }
  d->ranges[d->nranges++] = (param_range_t){params, n, ++d->stamps};
}

/* The range holding all of the matrix at p, or NULL. */
static const param_range_t *range_of(const dt_cpu_dnnl_t *d, const float *p, int rows, int cols,
                                     int ld) {
  const size_t span = (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
  for (int i = 0; i < d->nranges; i++) {
    const param_range_t *r = &d->ranges[i];
    if (p >= r->base && (size_t)(p - r->base) + span <= r->n) return r;
  }
  return NULL;
}

/* Runs the fp32 -> bf16 reorder r from `from` into `to`. */
static void reorder_into(dt_cpu_dnnl_t *d, reorder_t *r, const void *from, void *to) {
  dnnl_memory_set_data_handle(r->mem_from, (void *)from);
  dnnl_memory_set_data_handle(r->mem_to, to);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, r->mem_from}, {DNNL_ARG_TO, r->mem_to}};
  execute(d, r->prim, 2, args);
}

/* The bf16 copy of the matrix p (rows x cols in memory, row stride ld) through r, whose
 * destination is compact in p's memory order: the parameter copy when p lies in a
 * named parameter buffer (converted only if the buffer was begun again since), else
 * `own` converted now. */
static void *to_bf16(dt_cpu_dnnl_t *d, reorder_t *r, const float *p, int rows, int cols, int ld,
                     void *own) {
  const param_range_t *range = range_of(d, p, rows, cols, ld);
  if (!range) {
    reorder_into(d, r, p, own);
    return own;
  }
  param_copy_t *c = NULL;
  for (size_t i = 0; i < d->ncopies && !c; i++) {
    param_copy_t *e = &d->copies[i];
    if (e->ptr == p && e->rows == rows && e->cols == cols && e->ld == ld) c = e;
  }
  if (!c) {
    if (d->ncopies == d->capcopies) {
      const size_t cap = d->capcopies ? 2 * d->capcopies : 16;
      param_copy_t *q = realloc(d->copies, cap * sizeof *q);
      if (!q) goto plain;
      d->copies = q;
      d->capcopies = cap;
    }
    const size_t bytes = ((size_t)rows * (size_t)cols * 2 + 63) / 64 * 64;
    void *buf = aligned_alloc(64, bytes);
    if (!buf) goto plain;
    c = &d->copies[d->ncopies++];
    *c = (param_copy_t){.ptr = p, .rows = rows, .cols = cols, .ld = ld, .stamp = 0, .buf = buf};
  }
  if (c->stamp != range->stamp) {
    reorder_into(d, r, p, c->buf);
    c->stamp = range->stamp;
  }
  return c->buf;
plain:
  reorder_into(d, r, p, own);
  return own;
}

/* ---- bf16 GEMMs ---- */

static bool gemm_key_equal(const gemm_entry_t *e, const gemm_entry_t *k) {
  return e->ta == k->ta && e->tb == k->tb && e->m == k->m && e->n == k->n && e->k == k->k &&
         e->lda == k->lda && e->ldb == k->ldb && e->ldc == k->ldc && e->alpha == k->alpha &&
         e->beta == k->beta;
}

/* A (rows, cols) operand op(X) of a row-major X with leading dimension ld: its fp32
 * strides, and a compact bf16 layout in the same memory order, or with `plain`
 * row-major whatever the memory order (the reorder then transposes). */
static dnnl_status_t operand_mds(int rows, int cols, bool trans, int ld, bool plain,
                                 dnnl_memory_desc_t *f, dnnl_memory_desc_t *h) {
  const dnnl_dims_t dims = {rows, cols};
  const dnnl_dims_t sf = {trans ? 1 : ld, trans ? ld : 1};
  const bool t = trans && !plain;
  const dnnl_dims_t sh = {t ? 1 : cols, t ? rows : 1};
  dnnl_status_t st = dnnl_memory_desc_init_by_strides(f, 2, dims, dnnl_f32, sf);
  return st != dnnl_success ? st : dnnl_memory_desc_init_by_strides(h, 2, dims, dnnl_bf16, sh);
}

static bool gemm_make(dt_cpu_dnnl_t *d, gemm_entry_t *e) {
  dnnl_memory_desc_t af, ah, bf, bh, cf;
  const dnnl_dims_t cdims = {e->m, e->n}, cstr = {e->ldc, 1};
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL;
  /* A transposed A (the weight gradient x^T dy) is copied row-major: oneDNN's AMX
   * matmul ran that GEMM about 4x slower from the transposed layout (DNNL_VERBOSE). */
  TRY(operand_mds(e->m, e->k, e->ta == DT_TRANS, e->lda, true, &af, &ah));
  TRY(operand_mds(e->k, e->n, e->tb == DT_TRANS, e->ldb, false, &bf, &bh));
  TRY(dnnl_memory_desc_init_by_strides(&cf, 2, cdims, dnnl_f32, cstr));
  TRY(dnnl_primitive_attr_create(&attr));
  if (e->alpha != 1.0f) TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &e->alpha));
  if (e->beta != 0.0f) {
    TRY(dnnl_post_ops_create(&po));
    TRY(dnnl_post_ops_append_sum(po, e->beta));
    TRY(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  dnnl_matmul_desc_t md;
  TRY(dnnl_matmul_desc_init(&md, &ah, &bh, NULL, &cf));
  TRY(dnnl_primitive_desc_create(&pd, &md, attr, d->engine, NULL));
  TRY(dnnl_primitive_create(&e->mm, pd));
  TRY(reorder_make(d, &e->a16, &af, &ah, &e->buf_a));
  TRY(reorder_make(d, &e->b16, &bf, &bh, &e->buf_b));
  TRY(memory_of(&e->m_src, &ah, d->engine, e->buf_a));
  TRY(memory_of(&e->m_wei, &bh, d->engine, e->buf_b));
  TRY(memory_of(&e->m_dst, &cf, d->engine, NULL));
  dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  dnnl_primitive_attr_destroy(attr);
  return true;
fail:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return false;
}

bool dt_cpu_dnnl_gemm_bf16(dt_cpu_dnnl_t *d, dt_trans ta, dt_trans tb, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return false;
  const gemm_entry_t key = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
                            .ldc = ldc, .alpha = alpha, .beta = beta};
  gemm_entry_t *e = NULL;
  for (size_t i = 0; i < d->ngemms && !e; i++)
    if (gemm_key_equal(d->gemms[i], &key)) e = d->gemms[i];
  if (!e) {
    if (d->ngemms == d->capgemms) {
      size_t cap = d->capgemms ? 2 * d->capgemms : 16;
      gemm_entry_t **p = realloc(d->gemms, cap * sizeof *p);
      if (!p) return false;
      d->gemms = p;
      d->capgemms = cap;
    }
    if (!(e = calloc(1, sizeof *e))) return false;
    *e = key;
    if (!(e->ok = gemm_make(d, e))) {
      gemm_release(e);
      if (!(e = calloc(1, sizeof *e))) return false;
      *e = key;
    }
    d->gemms[d->ngemms++] = e;
  }
  if (!e->ok) return false;
  omp_set_num_threads(d->threads);
  /* Both operands are compact bf16 copies in their memory order; a parameter's copy is
   * made once per forward pass and reused (the backward-data GEMM of a dense layer
   * reads the same kernel transposed). */
  const bool at = ta == DT_TRANS, bt = tb == DT_TRANS;
  /* A transposed A is copied transposed (gemm_make), which the parameter copies do not
   * cover: it is converted every time. */
  if (at)
    reorder_into(d, &e->a16, a, e->buf_a);
  dnnl_memory_set_data_handle(e->m_src, at ? e->buf_a : to_bf16(d, &e->a16, a, m, k, lda,
                                                                   e->buf_a));
  dnnl_memory_set_data_handle(e->m_wei, to_bf16(d, &e->b16, b, bt ? n : k, bt ? k : n, ldb,
                                                e->buf_b));
  dnnl_memory_set_data_handle(e->m_dst, c);
  const dnnl_exec_arg_t args[] = {
      {DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_WEIGHTS, e->m_wei}, {DNNL_ARG_DST, e->m_dst}};
  execute(d, e->mm, 3, args);
  return true;
}
