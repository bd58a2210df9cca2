/* Behaviour of the sequence layers: LSTM, GRU and SimpleRNN steps against values worked
 * out from the equations in double (one unit by hand, two units through a reference
 * written out here), return_sequences against the flat output, the halves of
 * bidirectional against the inner layer on the sequence and on its reverse, embedding
 * lookups and ids outside the table, dense with time_distributed, the initial values
 * (forget-gate bias, orthogonal recurrent kernel), parameter names and shapes, and the
 * config errors. Gradients are checked in test_gradcheck_rnn.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"
#include "device_util.h"
#include "test_util.h"

/* The fast sigmoid/tanh of the cells are within a few float ulp; the outputs here are
 * of order one after a few steps. */
#define TOL 2e-6

typedef struct {
  dt_config_t *cfg;
  dt_model_t m;
} mdl_t;

static dt_shape_t seq(int T, int F) { return (dt_shape_t){2, {T, F, 1, 1}}; }

static int mdl_build(mdl_t *t, const char *text, dt_shape_t in, int batch, dt_error_t *err) {
  memset(t, 0, sizeof *t);
  t->cfg = dt_config_new();
  /* Every model here is a stack under an mse loss. */
  char full[1024];
  snprintf(full, sizeof full, "[model]\nloss = mse\n%s", text);
  int rc = dt_config_load_string(t->cfg, full, "test", err);
  if (!rc) rc = dt_model_build(&t->m, test_device(), t->cfg, in, err);
  if (!rc) rc = dt_model_prepare(&t->m, batch, err);
  return rc;
}

static bool mdl_ok(mdl_t *t, const char *text, dt_shape_t in, int batch) {
  dt_error_t err = {0};
  int rc = mdl_build(t, text, in, batch, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "  building\n%s\nfailed: %s\n", text, err.msg);
  return rc == 0;
}

static void mdl_free(mdl_t *t) {
  dt_model_free(&t->m);
  dt_config_free(t->cfg);
}

/* Runs forward on x and returns the output of layer `layer` (0-based). */
static const float *mdl_run(mdl_t *t, int batch, const float *x, int layer) {
  memcpy(t->m.acts[0], x, sizeof(float) * (size_t)batch * dt_model_input_size(&t->m));
  dt_model_forward(&t->m, batch, false, NULL);
  return t->m.acts[layer + 1];
}

static float *param(mdl_t *t, const char *name) {
  for (int i = 0; i < t->m.nparams; i++)
    if (strcmp(t->m.params[i].name, name) == 0) return t->m.param_buf + t->m.params[i].offset;
  fprintf(stderr, "no parameter %s\n", name);
  CHECK(!"parameter found");
  return NULL;
}

static const dt_param_info_t *param_info(mdl_t *t, const char *name) {
  for (int i = 0; i < t->m.nparams; i++)
    if (strcmp(t->m.params[i].name, name) == 0) return &t->m.params[i];
  return NULL;
}

static void fill(float *p, size_t n, dt_rng_t *rng, float scale) {
  for (size_t i = 0; i < n; i++) p[i] = scale * (2.0f * dt_rng_uniform(rng) - 1.0f);
}

static double sigd(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- one unit, by hand ---- */

/* LSTM, 1 unit, 2 features, 2 steps. Kernel columns i, f, c, o. */
static void test_lstm_by_hand(void) {
  mdl_t t;
  if (!mdl_ok(&t, "[layer.1]\ntype = lstm\nunits = 1\nreturn_sequences = true\n"
                  "[layer.2]\ntype = dense\nunits = 1\n",
              seq(2, 2), 1)) {
    mdl_free(&t);
    return;
  }
  const float K[8] = {0.5f, -0.3f, 0.8f, 0.1f, /* feature 0 */ 0.2f, 0.4f, -0.6f, 0.7f};
  const float R[4] = {0.3f, -0.2f, 0.5f, 0.4f};
  const float b[4] = {0.1f, 1.0f, -0.2f, 0.05f};
  memcpy(param(&t, "lstm_1.kernel"), K, sizeof K);
  memcpy(param(&t, "lstm_1.recurrent_kernel"), R, sizeof R);
  memcpy(param(&t, "lstm_1.bias"), b, sizeof b);
  const float x[4] = {1.0f, -2.0f, 0.5f, 0.5f};
  const float *y = mdl_run(&t, 1, x, 0);
  /* Step 1 (h = c = 0): pre-activations 0.5 - 0.4 + 0.1, -0.3 - 0.8 + 1, 0.8 + 1.2 - 0.2,
   * 0.1 - 1.4 + 0.05. */
  const double c1 = sigd(-0.1) * 0.0 + sigd(0.2) * tanh(1.8);
  const double h1 = sigd(-1.25) * tanh(c1);
  /* Step 2: x = (0.5, 0.5), plus R h1. */
  const double zi = 0.25 + 0.1 + 0.1 + 0.3 * h1, zf = 0.05 + 1.0 - 0.2 * h1,
               zc = 0.1 - 0.2 + 0.5 * h1, zo = 0.4 + 0.05 + 0.4 * h1;
  const double c2 = sigd(zf) * c1 + sigd(zi) * tanh(zc);
  const double h2 = sigd(zo) * tanh(c2);
  CHECK_NEAR(y[0], h1, TOL);
  CHECK_NEAR(y[1], h2, TOL);
  mdl_free(&t);
}

/* GRU (reset_after), 1 unit, 2 features, 2 steps. Columns z, r, h; bias rows input,
 * recurrent. */
static void test_gru_by_hand(void) {
  mdl_t t;
  if (!mdl_ok(&t, "[layer.1]\ntype = gru\nunits = 1\nreturn_sequences = true\n"
                  "[layer.2]\ntype = dense\nunits = 1\n",
              seq(2, 2), 1)) {
    mdl_free(&t);
    return;
  }
  const float K[6] = {0.4f, -0.5f, 0.9f, /* feature 0 */ 0.3f, 0.2f, -0.7f};
  const float R[3] = {0.6f, -0.4f, 0.8f};
  const float b[6] = {0.1f, 0.2f, -0.1f, /* recurrent */ -0.3f, 0.05f, 0.25f};
  memcpy(param(&t, "gru_1.kernel"), K, sizeof K);
  memcpy(param(&t, "gru_1.recurrent_kernel"), R, sizeof R);
  memcpy(param(&t, "gru_1.bias"), b, sizeof b);
  const float x[4] = {1.0f, 2.0f, -1.0f, 0.5f};
  const float *y = mdl_run(&t, 1, x, 0);
  /* Step 1, h = 0: the recurrent projection is its bias alone. */
  double z = sigd(0.4 + 0.6 + 0.1 - 0.3), r = sigd(-0.5 + 0.4 + 0.2 + 0.05);
  double hh = tanh(0.9 - 1.4 - 0.1 + r * 0.25);
  const double h1 = (1.0 - z) * hh;
  /* Step 2: x = (-1, 0.5). */
  z = sigd(-0.4 + 0.15 + 0.1 + (0.6 * h1 - 0.3));
  r = sigd(0.5 + 0.1 + 0.2 + (-0.4 * h1 + 0.05));
  hh = tanh(-0.9 - 0.35 - 0.1 + r * (0.8 * h1 + 0.25));
  const double h2 = z * h1 + (1.0 - z) * hh;
  CHECK_NEAR(y[0], h1, TOL);
  CHECK_NEAR(y[1], h2, TOL);
  mdl_free(&t);
}

static void test_simple_rnn_by_hand(void) {
  mdl_t t;
  if (!mdl_ok(&t, "[layer.1]\ntype = simple_rnn\nunits = 1\nreturn_sequences = true\n"
                  "[layer.2]\ntype = dense\nunits = 1\n",
              seq(3, 2), 1)) {
    mdl_free(&t);
    return;
  }
  const float K[2] = {0.7f, -0.4f}, R[1] = {0.9f}, b[1] = {0.1f};
  memcpy(param(&t, "simple_rnn_1.kernel"), K, sizeof K);
  memcpy(param(&t, "simple_rnn_1.recurrent_kernel"), R, sizeof R);
  memcpy(param(&t, "simple_rnn_1.bias"), b, sizeof b);
  const float x[6] = {1.0f, 1.0f, -0.5f, 2.0f, 0.25f, 0.0f};
  const float *y = mdl_run(&t, 1, x, 0);
  const double h1 = tanh(0.7 - 0.4 + 0.1);
  const double h2 = tanh(-0.35 - 0.8 + 0.1 + 0.9 * h1);
  const double h3 = tanh(0.175 + 0.1 + 0.9 * h2);
  CHECK_NEAR(y[0], h1, TOL);
  CHECK_NEAR(y[1], h2, TOL);
  CHECK_NEAR(y[2], h3, TOL);
  mdl_free(&t);
}

/* ---- several units: the fused gate blocks ---- */

/* One sample x (T, F) through a cell written from the equations, in double; hs (T, u). */
static void reference(const char *kind, int T, int F, int u, const float *x, const float *K,
                      const float *R, const float *bias, double *hs) {
  const int G = strcmp(kind, "lstm") == 0 ? 4 * u : strcmp(kind, "gru") == 0 ? 3 * u : u;
  double h[8] = {0}, c[8] = {0}, zx[32], zr[32];
  for (int t = 0; t < T; t++) {
    for (int g = 0; g < G; g++) {
      zx[g] = bias[g];
      zr[g] = strcmp(kind, "gru") == 0 ? bias[G + g] : 0.0;
      for (int f = 0; f < F; f++) zx[g] += (double)x[t * F + f] * K[f * G + g];
      for (int k = 0; k < u; k++) zr[g] += h[k] * R[k * G + g];
    }
    for (int j = 0; j < u; j++) {
      if (strcmp(kind, "lstm") == 0) {
        const double i = sigd(zx[j] + zr[j]), f = sigd(zx[u + j] + zr[u + j]);
        const double g = tanh(zx[2 * u + j] + zr[2 * u + j]);
        const double o = sigd(zx[3 * u + j] + zr[3 * u + j]);
        c[j] = f * c[j] + i * g;
        hs[t * u + j] = o * tanh(c[j]);
      } else if (strcmp(kind, "gru") == 0) {
        const double z = sigd(zx[j] + zr[j]), r = sigd(zx[u + j] + zr[u + j]);
        const double hh = tanh(zx[2 * u + j] + r * zr[2 * u + j]);
        hs[t * u + j] = z * h[j] + (1.0 - z) * hh;
      } else {
        hs[t * u + j] = tanh(zx[j] + zr[j]);
      }
    }
    for (int j = 0; j < u; j++) h[j] = hs[t * u + j];
  }
}

/* Two units, three steps, two samples: every step against the reference, and the flat
 * output against the last step of return_sequences (exactly: the same computation). */
static void test_against_reference(void) {
  static const char *const kinds[] = {"simple_rnn", "lstm", "gru"};
  enum { B = 2, T = 3, F = 2, U = 2 };
  for (int k = 0; k < 3; k++) {
    char text[256], name[64];
    snprintf(text, sizeof text,
             "[layer.1]\ntype = %s\nunits = %d\nreturn_sequences = true\n"
             "[layer.2]\ntype = dense\nunits = 1\n",
             kinds[k], U);
    mdl_t t, flat;
    bool ok = mdl_ok(&t, text, seq(T, F), B);
    snprintf(text, sizeof text, "[layer.1]\ntype = %s\nunits = %d\n", kinds[k], U);
    ok = mdl_ok(&flat, text, seq(T, F), B) && ok;
    if (!ok) {
      mdl_free(&t);
      mdl_free(&flat);
      continue;
    }
    dt_rng_t rng;
    dt_rng_seed(&rng, 40 + k);
    fill(t.m.param_buf, t.m.num_params, &rng, 0.8f);
    float x[B * T * F];
    fill(x, B * T * F, &rng, 1.0f);
    const float *y = mdl_run(&t, B, x, 0);
    snprintf(name, sizeof name, "%s_1.kernel", kinds[k]);
    const float *K = param(&t, name);
    snprintf(name, sizeof name, "%s_1.recurrent_kernel", kinds[k]);
    const float *R = param(&t, name);
    snprintf(name, sizeof name, "%s_1.bias", kinds[k]);
    const float *bias = param(&t, name);
    int bad = 0;
    for (int b = 0; b < B; b++) {
      double hs[T * U];
      reference(kinds[k], T, F, U, x + b * T * F, K, R, bias, hs);
      for (int i = 0; i < T * U; i++) {
        if (fabs(y[b * T * U + i] - hs[i]) > TOL) {
          bad++;
          fprintf(stderr, "%s sample %d step %d unit %d: %.9g, reference %.9g\n", kinds[k], b,
                  i / U, i % U, y[b * T * U + i], hs[i]);
        }
      }
    }
    CHECK_INT_EQ(bad, 0);
    /* The flat layer has the same three tensors first in its buffer. */
    memcpy(flat.m.param_buf, t.m.param_buf, sizeof(float) * flat.m.num_params);
    const float *last = mdl_run(&flat, B, x, 0);
    y = mdl_run(&t, B, x, 0);
    for (int b = 0; b < B; b++)
      CHECK(memcmp(last + b * U, y + (b * T + T - 1) * U, sizeof(float) * U) == 0);
    mdl_free(&t);
    mdl_free(&flat);
  }
}

/* ---- bidirectional ---- */

static void copy_params(mdl_t *to, const char *to_layer, mdl_t *from, const char *from_prefix) {
  static const char *const suffixes[] = {"kernel", "recurrent_kernel", "bias"};
  for (int s = 0; s < 3; s++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%s.%s", to_layer, suffixes[s]);
    snprintf(b, sizeof b, "%s%s", from_prefix, suffixes[s]);
    const dt_param_info_t *pa = param_info(to, a), *pb = param_info(from, b);
    CHECK(pa && pb && pa->count == pb->count);
    if (pa && pb && pa->count == pb->count)
      memcpy(to->m.param_buf + pa->offset, from->m.param_buf + pb->offset,
             sizeof(float) * pa->count);
  }
}

/* The forward half is the inner layer on x; the backward half is the inner layer on x
 * reversed in time, its outputs put back in input order; concat puts them side by side,
 * sum adds them. */
static void test_bidirectional_halves(void) {
  static const char *const kinds[] = {"simple_rnn", "lstm", "gru"};
  enum { B = 2, T = 4, F = 3, U = 2 };
  for (int k = 0; k < 3; k++) {
    for (int rs = 0; rs < 2; rs++) {
      char text[320], inner[64];
      const char *rss = rs ? "true" : "false";
      mdl_t cat, sum, one;
      snprintf(text, sizeof text,
               "[layer.1]\ntype = bidirectional\nlayer = %s\nunits = %d\nreturn_sequences = %s\n"
               "[layer.2]\ntype = dense\nunits = 1\n",
               kinds[k], U, rss);
      bool ok = mdl_ok(&cat, text, seq(T, F), B);
      snprintf(text, sizeof text,
               "[layer.1]\ntype = bidirectional\nlayer = %s\nunits = %d\nreturn_sequences = %s\n"
               "merge_mode = sum\n[layer.2]\ntype = dense\nunits = 1\n",
               kinds[k], U, rss);
      ok = mdl_ok(&sum, text, seq(T, F), B) && ok;
      snprintf(text, sizeof text,
               "[layer.1]\ntype = %s\nunits = %d\nreturn_sequences = %s\n"
               "[layer.2]\ntype = dense\nunits = 1\n",
               kinds[k], U, rss);
      ok = mdl_ok(&one, text, seq(T, F), B) && ok;
      if (!ok) {
        mdl_free(&cat);
        mdl_free(&sum);
        mdl_free(&one);
        continue;
      }
      CHECK_INT_EQ(cat.m.layers[0].out_shape.dims[cat.m.layers[0].out_shape.ndim - 1], 2 * U);
      CHECK_INT_EQ(sum.m.layers[0].out_shape.dims[sum.m.layers[0].out_shape.ndim - 1], U);
      dt_rng_t rng;
      dt_rng_seed(&rng, 70 + 2 * k + rs);
      fill(cat.m.param_buf, cat.m.num_params, &rng, 0.8f);
      memcpy(sum.m.param_buf, cat.m.param_buf, sizeof(float) * sum.m.num_params);
      float x[B * T * F], xr[B * T * F];
      fill(x, B * T * F, &rng, 1.0f);
      for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
          memcpy(xr + (b * T + t) * F, x + (b * T + T - 1 - t) * F, sizeof(float) * F);
      const int steps = rs ? T : 1;
      float yc[B * T * 2 * U], ys[B * T * U], fw[B * T * U], bw[B * T * U];
      memcpy(yc, mdl_run(&cat, B, x, 0), sizeof(float) * B * steps * 2 * U);
      memcpy(ys, mdl_run(&sum, B, x, 0), sizeof(float) * B * steps * U);
      snprintf(inner, sizeof inner, "%s_1", kinds[k]);
      copy_params(&one, inner, &cat, "bidirectional_1.forward_");
      memcpy(fw, mdl_run(&one, B, x, 0), sizeof(float) * B * steps * U);
      copy_params(&one, inner, &cat, "bidirectional_1.backward_");
      memcpy(bw, mdl_run(&one, B, xr, 0), sizeof(float) * B * steps * U);
      int bad = 0;
      for (int b = 0; b < B; b++) {
        for (int s = 0; s < steps; s++) {
          /* Output step s of the backward half is step T-1-s of the reversed run. */
          const float *f = fw + (b * steps + s) * U;
          const float *r = bw + (b * steps + (rs ? T - 1 - s : 0)) * U;
          const float *c = yc + (b * steps + s) * 2 * U, *m = ys + (b * steps + s) * U;
          for (int j = 0; j < U; j++)
            bad += c[j] != f[j] || c[U + j] != r[j] || m[j] != f[j] + r[j];
        }
      }
      if (bad)
        fprintf(stderr, "bidirectional %s return_sequences=%s: %d mismatches\n", kinds[k], rss,
                bad);
      CHECK_INT_EQ(bad, 0);
      mdl_free(&cat);
      mdl_free(&sum);
      mdl_free(&one);
    }
  }
}

/* ---- embedding ---- */

static void test_embedding(void) {
  mdl_t t;
  if (!mdl_ok(&t, "[layer.1]\ntype = embedding\ninput_dim = 4\noutput_dim = 3\n"
                  "[layer.2]\ntype = dense\nunits = 1\n",
              dt_shape_1d(7), 1)) {
    mdl_free(&t);
    return;
  }
  const dt_layer_t *l = &t.m.layers[0];
  CHECK_INT_EQ(l->out_shape.ndim, 2);
  CHECK_INT_EQ(l->out_shape.dims[0], 7);
  CHECK_INT_EQ(l->out_shape.dims[1], 3);
  float *E = param(&t, "embedding_1.embeddings");
  for (int i = 0; i < 12; i++) E[i] = (float)(10 * (i / 3) + i % 3 + 1); /* row r: 10r+1.. */
  /* 4 and -1 are outside the table, NaN is no id, 2.7 is id 2. */
  const float x[7] = {0.0f, 3.0f, 2.0f, 4.0f, -1.0f, 2.7f, NAN};
  const int want[7] = {0, 3, 2, -1, -1, 2, -1};
  const float *y = mdl_run(&t, 1, x, 0);
  for (int k = 0; k < 7; k++)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(y[k * 3 + j], want[k] < 0 ? 0.0f : E[want[k] * 3 + j], 0.0);

  /* Backward: the rows of repeated ids add up, unused and out-of-range ids give
   * nothing, and dx is zero. */
  float dy[21], dx[7];
  for (int i = 0; i < 21; i++) dy[i] = 0.5f * (float)(i + 1);
  for (int i = 0; i < 7; i++) dx[i] = 99.0f;
  dt_layer_t *lm = &t.m.layers[0];
  for (size_t i = 0; i < t.m.num_params; i++) t.m.grad_buf[i] = 7.0f; /* overwritten */
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(&t.m, false, NULL);
  lm->ops->backward(lm, &ctx, 1, t.m.acts[0], t.m.acts[1], dy, dx);
  const float *g = t.m.grad_buf + param_info(&t, "embedding_1.embeddings")->offset;
  for (int j = 0; j < 3; j++) {
    CHECK_NEAR(g[0 * 3 + j], dy[0 * 3 + j], 0.0);
    CHECK_NEAR(g[1 * 3 + j], 0.0, 0.0);
    CHECK_NEAR(g[2 * 3 + j], dy[2 * 3 + j] + dy[5 * 3 + j], 0.0);
    CHECK_NEAR(g[3 * 3 + j], dy[1 * 3 + j], 0.0);
  }
  for (int i = 0; i < 7; i++) CHECK_NEAR(dx[i], 0.0, 0.0);
  mdl_free(&t);
}

/* ---- dense with time_distributed ---- */

static void test_time_distributed(void) {
  mdl_t t, flat;
  bool ok = mdl_ok(&t, "[layer.1]\ntype = dense\nunits = 2\ntime_distributed = true\n"
                       "[layer.2]\ntype = dense\nunits = 1\n",
                   seq(3, 4), 2);
  ok = mdl_ok(&flat, "[layer.1]\ntype = dense\nunits = 2\n", seq(3, 4), 2) && ok;
  if (ok) {
    const dt_layer_t *l = &t.m.layers[0];
    CHECK_INT_EQ(l->out_shape.ndim, 2);
    CHECK_INT_EQ(l->out_shape.dims[0], 3);
    CHECK_INT_EQ(l->out_shape.dims[1], 2);
    CHECK_INT_EQ(t.m.params[0].shape.dims[0], 4); /* kernel (4, 2): shared by the steps */
    CHECK_INT_EQ(flat.m.params[0].shape.dims[0], 12); /* the default still flattens */
    CHECK_INT_EQ(flat.m.layers[0].out_shape.ndim, 1);
    dt_rng_t rng;
    dt_rng_seed(&rng, 5);
    fill(t.m.param_buf, t.m.num_params, &rng, 1.0f);
    float x[24];
    fill(x, 24, &rng, 1.0f);
    const float *y = mdl_run(&t, 2, x, 0);
    const float *W = param(&t, "dense_1.kernel"), *b = param(&t, "dense_1.bias");
    for (int r = 0; r < 6; r++) /* 2 samples x 3 steps */
      for (int j = 0; j < 2; j++) {
        double v = b[j];
        for (int f = 0; f < 4; f++) v += (double)x[r * 4 + f] * W[f * 2 + j];
        CHECK_NEAR(y[r * 2 + j], v, 1e-5);
      }
  }
  mdl_free(&t);
  mdl_free(&flat);
}

/* ---- initial values, names and shapes ---- */

static void test_init_and_names(void) {
  mdl_t t;
  if (mdl_ok(&t, "[layer.1]\ntype = lstm\nunits = 3\nreturn_sequences = true\n"
                 "[layer.2]\ntype = lstm\nunits = 2\nunit_forget_bias = false\n"
                 "recurrent_initializer = glorot_uniform\n",
             seq(4, 2), 2)) {
    dt_rng_t rng;
    dt_rng_seed(&rng, 9);
    dt_model_init_params(&t.m, &rng, NULL);
    const float *b = param(&t, "lstm_1.bias");
    for (int j = 0; j < 12; j++) CHECK_NEAR(b[j], j >= 3 && j < 6 ? 1.0 : 0.0, 0.0);
    b = param(&t, "lstm_2.bias");
    for (int j = 0; j < 8; j++) CHECK_NEAR(b[j], 0.0, 0.0);
    /* Orthogonal (3, 12): R R^T = I. */
    const float *R = param(&t, "lstm_1.recurrent_kernel");
    double worst = 0.0;
    for (int a = 0; a < 3; a++)
      for (int c = 0; c < 3; c++) {
        double dot = 0.0;
        for (int j = 0; j < 12; j++) dot += (double)R[a * 12 + j] * R[c * 12 + j];
        worst = fmax(worst, fabs(dot - (a == c)));
      }
    CHECK_NEAR(worst, 0.0, 1e-6);
    const dt_param_info_t *p = param_info(&t, "lstm_2.recurrent_kernel");
    CHECK(p && p->init == DT_INIT_GLOROT_UNIFORM && p->shape.dims[0] == 2 && p->shape.dims[1] == 8);
    p = param_info(&t, "lstm_2.kernel");
    CHECK(p && p->shape.dims[0] == 3 && p->shape.dims[1] == 8); /* lstm_1's 3 units in */
  }
  mdl_free(&t);

  /* Bidirectional GRU: two full sets, GRU bias (2, 3u), names whole. */
  if (mdl_ok(&t, "[layer.1]\ntype = bidirectional\nlayer = gru\nunits = 2\n", seq(3, 5), 1)) {
    static const char *const names[] = {
        "bidirectional_1.forward_kernel",  "bidirectional_1.forward_recurrent_kernel",
        "bidirectional_1.forward_bias",    "bidirectional_1.backward_kernel",
        "bidirectional_1.backward_recurrent_kernel", "bidirectional_1.backward_bias"};
    CHECK_INT_EQ(t.m.nparams, 6);
    for (int i = 0; i < 6 && i < t.m.nparams; i++) {
      if (strcmp(t.m.params[i].name, names[i]) != 0)
        fprintf(stderr, "parameter %d is %s, expected %s\n", i, t.m.params[i].name, names[i]);
      CHECK(strcmp(t.m.params[i].name, names[i]) == 0);
    }
    const dt_param_info_t *p = param_info(&t, "bidirectional_1.backward_bias");
    CHECK(p && p->shape.ndim == 2 && p->shape.dims[0] == 2 && p->shape.dims[1] == 6);
    CHECK_INT_EQ(t.m.out_shape.dims[0], 4);
    CHECK_INT_EQ(t.m.num_params, 2 * (5 * 6 + 2 * 6 + 2 * 6));
  }
  mdl_free(&t);
}

/* ---- config errors ---- */

static void expect_error(const char *text, dt_shape_t in, const char *want1, const char *want2) {
  mdl_t t;
  dt_error_t err = {0};
  int rc = mdl_build(&t, text, in, 2, &err);
  CHECK(rc != 0);
  if (rc == 0) fprintf(stderr, "  expected an error from\n%s\n", text);
  CHECK_STR_CONTAINS(err.msg, want1);
  CHECK_STR_CONTAINS(err.msg, want2);
  mdl_free(&t);
}

static void test_config_errors(void) {
  expect_error("[layer.1]\ntype = embedding\ninput_dim = 5\noutput_dim = 2\n"
               "[layer.2]\ntype = lstm\n",
               dt_shape_1d(3), "test [layer.2]", "needs 'units'");
  expect_error("[layer.1]\ntype = lstm\nunits = 4\n", dt_shape_1d(784), "test [layer.1]",
               "(784)");
  expect_error("[layer.1]\ntype = gru\nunits = 4\n", dt_shape_3d(28, 28, 1), "test [layer.1]",
               "sequences (time steps, features)");
  expect_error("[layer.1]\ntype = lstm\nunits = 4\nactivation = relu\n", seq(3, 2), "[layer.1]",
               "'activation' would append");
  expect_error("[layer.1]\ntype = lstm\nunits = 4\nrecurrent_initializer = eye\n", seq(3, 2),
               "[layer.1] recurrent_initializer = 'eye'", "orthogonal");
  expect_error("[layer.1]\ntype = gru\nunits = 4\nreset_after = false\n", seq(3, 2), "[layer.1]",
               "reset_after = false");
  expect_error("[layer.1]\ntype = bidirectional\nunits = 4\n", seq(3, 2), "test [layer.1]",
               "needs 'layer'");
  expect_error("[layer.1]\ntype = bidirectional\nlayer = dense\nunits = 4\n", seq(3, 2),
               "[layer.1] layer = 'dense'", "simple_rnn, lstm, gru");
  expect_error("[layer.1]\ntype = bidirectional\nlayer = lstm\nunits = 4\nmerge_mode = mul\n",
               seq(3, 2), "merge_mode", "concat, sum");
  expect_error("[layer.1]\ntype = bidirectional\nlayer = lstm\n", seq(3, 2), "test [layer.1]",
               "needs 'units'");
  expect_error("[layer.1]\ntype = simple_rnn\nunits = 0\n", seq(3, 2), "[layer.1] units",
               "between 1");
  expect_error("[layer.1]\ntype = embedding\ninput_dim = 10\n", dt_shape_1d(5), "test [layer.1]",
               "'output_dim'");
}

int main(void) {
  test_lstm_by_hand();
  test_gru_by_hand();
  test_simple_rnn_by_hand();
  test_against_reference();
  test_bidirectional_halves();
  test_embedding();
  test_time_distributed();
  test_init_and_names();
  test_config_errors();
  test_device_release();
  return test_summary("test_rnn");
}
