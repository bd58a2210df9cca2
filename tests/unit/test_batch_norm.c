/* Batch normalization: gradients against finite differences (standalone for (F) and
 * (H, W, C) inputs, in training and eval mode, and inside dense-batch_norm-relu-dense
 * models), and hand-computed values of the normalization, the moving averages and the
 * eval-mode output. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

static const char bn_only[] = "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\n";

/* ---- a batch_norm layer built and run on its own ----
 * The model requires a flat output before the loss, so (H, W, C) and (T, F) inputs are
 * checked on the layer directly: built from a config section, with its own parameter,
 * gradient, state and scratch memory, against differences of L = sum(c * y) with the
 * tolerance of gradcheck.h. */
typedef struct {
  dt_config_t *cfg;
  dt_layer_t l;
  float *mem; /* params, grads, states */
  float *scratch;
  int batch;
  size_t n; /* values per batch */
  bool training;
} solo_t;

static bool solo_build(solo_t *s, const char *keys, dt_shape_t in, int batch) {
  memset(s, 0, sizeof *s);
  dt_error_t err = {0};
  char text[256];
  snprintf(text, sizeof text, "[bn]\ntype = batch_norm\n%s", keys);
  s->cfg = dt_config_new();
  s->l.ops = dt_layer_find("batch_norm");
  s->l.in_shape = in;
  snprintf(s->l.name, sizeof s->l.name, "batch_norm_1");
  int rc = dt_config_load_string(s->cfg, text, "solo", &err);
  if (!rc) rc = s->l.ops->build(&s->l, s->cfg, "bn", &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "building %s: %s\n", text, err.msg);
    return false;
  }
  size_t np = 0, ns = 0;
  for (int p = 0; p < s->l.nparams; p++) np += s->l.param_decl[p].count;
  for (int p = 0; p < s->l.nstates; p++) ns += s->l.state_decl[p].count;
  s->mem = calloc(2 * np + ns + 1, sizeof(float));
  size_t sb = (s->l.ops->scratch_floats(&s->l, batch) * sizeof(float) + 63) / 64 * 64;
  s->scratch = aligned_alloc(64, sb);
  s->l.scratch = s->scratch;
  float *p = s->mem;
  for (int i = 0; i < s->l.nparams; i++, p += s->l.param_decl[i - 1].count) s->l.w[i] = p;
  for (int i = 0; i < s->l.nparams; i++, p += s->l.param_decl[i - 1].count) s->l.g[i] = p;
  for (int i = 0; i < s->l.nstates; i++, p += s->l.state_decl[i - 1].count) s->l.s[i] = p;
  s->batch = batch;
  s->n = (size_t)batch * dt_shape_size(&in);
  return true;
}

static void solo_free(solo_t *s) {
  free(s->l.priv);
  free(s->mem);
  free(s->scratch);
  dt_config_free(s->cfg);
}

static double solo_functional(solo_t *s, const float *x, float *y, const float *c) {
  dt_fwd_ctx_t ctx = {.training = s->training, .rng = NULL};
  s->l.ops->forward(&s->l, &ctx, s->batch, x, y);
  double sum = 0.0;
  for (size_t i = 0; i < s->n; i++) sum += (double)c[i] * y[i];
  return sum;
}

static void gradcheck_solo(const char *what, const char *keys, dt_shape_t in, int batch,
                           bool training, uint64_t seed, int line) {
  solo_t s;
  if (!solo_build(&s, keys, in, batch)) {
    solo_free(&s);
    return;
  }
  s.training = training;
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  /* gamma around 1, beta around 0, moving averages away from 0 and 1. */
  for (int p = 0; p < s.l.nparams; p++)
    for (size_t i = 0; i < s.l.param_decl[p].count; i++)
      s.l.w[p][i] = (s.l.param_decl[p].init == DT_INIT_ONES ? 1.0f : 0.0f) +
                    uniform(&rng, -0.5f, 0.5f);
  for (size_t i = 0; i < s.l.state_decl[0].count; i++) {
    s.l.s[0][i] = uniform(&rng, -0.5f, 0.5f);
    s.l.s[1][i] = uniform(&rng, 0.3f, 2.0f);
  }
  float *x = malloc(sizeof(float) * s.n), *y = malloc(sizeof(float) * s.n),
        *c = malloc(sizeof(float) * s.n), *dx = malloc(sizeof(float) * s.n);
  for (size_t i = 0; i < s.n; i++) {
    x[i] = uniform(&rng, -2.0f, 2.0f);
    c[i] = uniform(&rng, -1.0f, 1.0f);
  }
  solo_functional(&s, x, y, c);
  double f0 = 0.0;
  for (size_t i = 0; i < s.n; i++) f0 += fabs((double)c[i] * y[i]);
  s.l.ops->backward(&s.l, batch, x, y, c, dx);
  size_t np = 0;
  for (int p = 0; p < s.l.nparams; p++) np += s.l.param_decl[p].count;
  float *pg = malloc(sizeof(float) * (np + 1));
  memcpy(pg, s.l.nparams ? s.l.g[0] : s.mem, sizeof(float) * np);

  char label[192], sh[64];
  snprintf(label, sizeof label, "%.96s (batch %d, in %s)", what, batch,
           dt_shape_str(&in, sh, sizeof sh));
  for (size_t k = 0; k < s.n; k++) {
    const float x0 = x[k];
    x[k] = x0 + EPS;
    const float hi = x[k];
    double lp = solo_functional(&s, x, y, c);
    x[k] = x0 - EPS;
    const float lo = x[k];
    double lm = solo_functional(&s, x, y, c);
    x[k] = x0;
    check_grad(label, "dx", k, dx[k], (lp - lm) / ((double)hi - lo), f0, line);
  }
  size_t off = 0;
  for (int p = 0; p < s.l.nparams; p++) {
    for (size_t i = 0; i < s.l.param_decl[p].count; i++) {
      float *w = &s.l.w[p][i];
      const float w0 = *w;
      *w = w0 + EPS;
      const float hi = *w;
      double lp = solo_functional(&s, x, y, c);
      *w = w0 - EPS;
      const float lo = *w;
      double lm = solo_functional(&s, x, y, c);
      *w = w0;
      check_grad(label, s.l.param_decl[p].name, i, pg[off + i], (lp - lm) / ((double)hi - lo), f0,
                 line);
    }
    off += s.l.param_decl[p].count;
  }
  free(x);
  free(y);
  free(c);
  free(dx);
  free(pg);
  solo_free(&s);
}

static void test_gradcheck_standalone(void) {
  /* Training mode: dx goes through the batch mean and variance. */
  gradcheck_layer_shape("batch_norm (F) training", bn_only, dt_shape_1d(5), 4, true, 0, 11,
                        __LINE__);
  gradcheck_layer_shape("batch_norm (F) training, batch 2", bn_only, dt_shape_1d(3), 2, true, 0,
                        12, __LINE__);
  gradcheck_solo("batch_norm (H,W,C) training", "", dt_shape_3d(3, 2, 4), 3, true, 13, __LINE__);
  gradcheck_solo("batch_norm (T,F) training", "momentum = 0.5\nepsilon = 0.01\n",
                 (dt_shape_t){2, {4, 3, 1, 1}}, 2, true, 14, __LINE__);
  gradcheck_solo("batch_norm (H,W,C) without gamma/beta (training)",
                 "center = false\nscale = false\n", dt_shape_3d(2, 2, 3), 2, true, 15, __LINE__);
  gradcheck_solo("batch_norm (H,W,C) beta only (training)", "scale = false\n",
                 dt_shape_3d(2, 2, 3), 2, true, 16, __LINE__);
  gradcheck_layer_shape("batch_norm gamma only (training)",
                        "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\ncenter = false\n",
                        dt_shape_1d(4), 3, true, 0, 16, __LINE__);
  /* 17 channels: blocks of one row (fewer channels are walked several rows at a time). */
  gradcheck_solo("batch_norm (H,W,C) 17 channels (training)", "", dt_shape_3d(2, 1, 17), 2, true,
                 20, __LINE__);
  gradcheck_layer_shape("batch_norm (F) 16 features training", bn_only, dt_shape_1d(16), 3, true,
                        0, 21, __LINE__);
  /* A batch of one sample of (1, 1, C): every channel has a single value, x_hat = 0. */
  gradcheck_solo("batch_norm single value per channel", "", dt_shape_3d(1, 1, 3), 1, true, 19,
                 __LINE__);
  /* Eval mode: the affine map of the moving averages (here their initial 0 and 1). */
  gradcheck_layer_shape("batch_norm (F) eval", bn_only, dt_shape_1d(5), 4, false, 0, 17, __LINE__);
  gradcheck_solo("batch_norm (H,W,C) eval, moved averages", "", dt_shape_3d(2, 3, 4), 2, false,
                 18, __LINE__);
}

static void test_gradcheck_models(void) {
  /* dense_1's kernel gradient is right only if batch_norm's dx is. */
  gradcheck_model("dense-batch_norm-relu-dense (training)",
                  "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = %d\n"
                  "kernel_initializer = he_normal\n[layer.2]\ntype = batch_norm\n"
                  "[layer.3]\ntype = relu\n[layer.4]\ntype = dense\nunits = %d\n",
                  2, true, 4, 401, __LINE__);
  gradcheck_model("dense-batch_norm-tanh-dense ce (training)",
                  "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = dense\n"
                  "units = %d\n[layer.2]\ntype = batch_norm\nactivation = tanh\n"
                  "[layer.3]\ntype = dense\nunits = %d\n",
                  2, true, 3, 402, __LINE__);

  /* Channels-last inside a model: per-channel statistics over batch and positions. */
  gradcheck_model("dense-reshape(2,2,3)-batch_norm-relu-flatten-dense (training)",
                  "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 12\n"
                  "kernel_initializer = he_normal\n[layer.2]\ntype = reshape\n"
                  "target_shape = 2,2,3\n[layer.3]\ntype = batch_norm\nactivation = relu\n"
                  "[layer.4]\ntype = flatten\n[layer.5]\ntype = dense\nunits = %d\n",
                  1, true, 3, 404, __LINE__);

  /* Eval mode with moving averages away from their initial values. */
  dt_rng_t rng;
  dt_rng_seed(&rng, 403);
  for (int trial = 0; trial < 3; trial++) {
    net_t n;
    if (!net_build(&n,
                   "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 4\n"
                   "[layer.2]\ntype = batch_norm\n[layer.3]\ntype = tanh\n"
                   "[layer.4]\ntype = dense\nunits = 3\n",
                   5, 3)) {
      net_free(&n);
      return;
    }
    n.training = false;
    net_init(&n, &rng);
    float *mm = n.m.layers[1].s[0], *mv = n.m.layers[1].s[1], saved[8];
    for (int j = 0; j < 4; j++) {
      mm[j] = uniform(&rng, -0.5f, 0.5f);
      mv[j] = uniform(&rng, 0.2f, 2.0f);
    }
    memcpy(saved, n.m.state_buf, sizeof saved);
    for (int i = 0; i < n.batch * n.in; i++) n.x[i] = uniform(&rng, -1.0f, 1.0f);
    net_targets(&n, &rng);
    net_check_params(&n, "dense-batch_norm-tanh-dense (eval, moved averages)", __LINE__);
    /* Eval forwards leave the moving averages alone. */
    CHECK_INT_EQ(n.m.num_states, 8);
    CHECK(memcmp(saved, n.m.state_buf, sizeof saved) == 0);
    net_free(&n);
  }
}

/* x (4 samples, 2 features): feature 0 is 1, 2, 3, 4 (mean 2.5, biased variance 1.25),
 * feature 1 is 10, 10, 14, 6 (mean 10, biased variance 8). */
static const float X4x2[8] = {1, 10, 2, 10, 3, 14, 4, 6};

static void test_values(void) {
  net_t n;
  if (!net_build(&n, "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\nmomentum = 0.9\n", 2,
                 4)) {
    net_free(&n);
    return;
  }
  dt_layer_t *l = &n.m.layers[0];
  CHECK_INT_EQ(n.m.nparams, 2);
  CHECK_INT_EQ(n.m.nstates, 2);
  CHECK(strcmp(n.m.params[0].name, "batch_norm_1.gamma") == 0);
  CHECK(strcmp(n.m.params[1].name, "batch_norm_1.beta") == 0);
  CHECK(!n.m.params[0].decay && !n.m.params[1].decay);
  CHECK(strcmp(n.m.states[0].name, "batch_norm_1.moving_mean") == 0);
  CHECK(strcmp(n.m.states[1].name, "batch_norm_1.moving_variance") == 0);
  dt_rng_t rng;
  dt_rng_seed(&rng, 1);
  dt_model_init_params(&n.m, &rng);
  CHECK_NEAR(l->w[0][1], 1.0, 0.0); /* gamma ones */
  CHECK_NEAR(l->w[1][1], 0.0, 0.0); /* beta zeros */
  CHECK_NEAR(l->s[0][1], 0.0, 0.0); /* moving_mean zeros */
  CHECK_NEAR(l->s[1][1], 1.0, 0.0); /* moving_variance ones */
  memcpy(n.x, X4x2, sizeof X4x2);

  /* Training: (x - mean) / sqrt(var + 0.001), hand-computed. */
  n.training = true;
  const float *y = net_forward(&n);
  const double y0[4] = {-1.3411044519645503, -0.4470348173215168, 0.4470348173215168,
                        1.3411044519645503};
  const double y1[4] = {0.0, 0.0, 1.4141251823109913, -1.4141251823109913};
  for (int i = 0; i < 4; i++) {
    CHECK_NEAR(y[2 * i], y0[i], 1e-6);
    CHECK_NEAR(y[2 * i + 1], y1[i], 1e-6);
  }
  /* Per-feature mean 0 and variance var / (var + eps). */
  for (int j = 0; j < 2; j++) {
    double s = 0, s2 = 0;
    for (int i = 0; i < 4; i++) s += y[2 * i + j];
    for (int i = 0; i < 4; i++) s2 += (y[2 * i + j] - s / 4) * (y[2 * i + j] - s / 4);
    CHECK_NEAR(s / 4, 0.0, 1e-7);
    CHECK_NEAR(s2 / 4, j == 0 ? 1.25 / 1.251 : 8.0 / 8.001, 1e-6);
  }
  /* One forward moved the averages by (1 - momentum) of the way. */
  CHECK_NEAR(l->s[0][0], 0.25, 1e-7);
  CHECK_NEAR(l->s[0][1], 1.0, 1e-7);
  CHECK_NEAR(l->s[1][0], 0.9 + 0.125, 1e-7);
  CHECK_NEAR(l->s[1][1], 0.9 + 0.8, 1e-7);

  /* K = 5 training forwards from the initial averages: moving_mean = mean (1 - 0.9^5),
   * moving_variance = 0.9^5 + var (1 - 0.9^5). */
  dt_model_init_params(&n.m, &rng);
  for (int k = 0; k < 5; k++) net_forward(&n);
  CHECK_NEAR(l->s[0][0], 1.023775, 1e-6);
  CHECK_NEAR(l->s[0][1], 4.0951, 1e-6);
  CHECK_NEAR(l->s[1][0], 1.1023775, 1e-6);
  CHECK_NEAR(l->s[1][1], 3.86657, 1e-6);

  /* gamma and beta scale and shift the normalized values. */
  l->w[0][0] = 2.0f;
  l->w[0][1] = 0.5f;
  l->w[1][0] = 1.0f;
  l->w[1][1] = -1.0f;
  y = net_forward(&n);
  for (int i = 0; i < 4; i++) {
    CHECK_NEAR(y[2 * i], 2.0 * y0[i] + 1.0, 2e-6);
    CHECK_NEAR(y[2 * i + 1], 0.5 * y1[i] - 1.0, 2e-6);
  }

  /* The training output does not depend on the moving averages. */
  float ytrain[8];
  memcpy(ytrain, y, sizeof ytrain);
  l->s[0][0] = 123.0f;
  l->s[0][1] = -7.0f;
  l->s[1][0] = 0.01f;
  l->s[1][1] = 50.0f;
  y = net_forward(&n);
  CHECK(memcmp(y, ytrain, sizeof ytrain) == 0);

  /* Eval: (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta. */
  const float mm[2] = {0.5f, -2.0f}, mv[2] = {4.0f, 0.25f};
  memcpy(l->s[0], mm, sizeof mm);
  memcpy(l->s[1], mv, sizeof mv);
  n.training = false;
  y = net_forward(&n);
  const double gamma[2] = {2.0, 0.5}, beta[2] = {1.0, -1.0};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) {
      double e =
          ((double)X4x2[2 * i + j] - mm[j]) / sqrt((double)mv[j] + 1e-3) * gamma[j] + beta[j];
      CHECK_NEAR(y[2 * i + j], e, 1e-6 * fmax(1.0, fabs(e)));
    }
  /* ... and leaves the averages as they were. */
  CHECK(memcmp(l->s[0], mm, sizeof mm) == 0);
  CHECK(memcmp(l->s[1], mv, sizeof mv) == 0);
  net_free(&n);
}

/* A channel whose mean is large against its spread: the statistics must not lose the
 * spread to cancellation. Checked against the same formula evaluated in double. */
static void test_large_mean(void) {
  solo_t s;
  if (!solo_build(&s, "epsilon = 1e-6\n", dt_shape_3d(4, 4, 2), 8)) {
    solo_free(&s);
    return;
  }
  s.l.w[0][0] = s.l.w[0][1] = 1.0f;
  s.l.s[1][0] = s.l.s[1][1] = 1.0f;
  s.training = true;
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  const int m = 8 * 16;
  float x[2 * 8 * 16], y[2 * 8 * 16];
  for (int r = 0; r < m; r++) {
    x[2 * r] = 3000.0f + uniform(&rng, -0.05f, 0.05f);
    x[2 * r + 1] = uniform(&rng, -3.0f, 3.0f);
  }
  dt_fwd_ctx_t ctx = {.training = true};
  s.l.ops->forward(&s.l, &ctx, 8, x, y);
  for (int j = 0; j < 2; j++) {
    double mean = 0, var = 0;
    for (int r = 0; r < m; r++) mean += x[2 * r + j];
    mean /= m;
    for (int r = 0; r < m; r++) var += (x[2 * r + j] - mean) * (x[2 * r + j] - mean);
    var /= m;
    double worst = 0;
    for (int r = 0; r < m; r++) {
      double e = (x[2 * r + j] - mean) / sqrt(var + 1e-6);
      worst = fmax(worst, fabs(y[2 * r + j] - e));
    }
    /* Normalizing subtracts the mean rounded to float: half an ulp of 3000 (1.2e-4)
     * against a standard deviation of 0.029 is up to 4.2e-3 in y. A variance lost to
     * cancellation (float E[x^2] - E[x]^2 is off by about 3000^2 * 6e-8 = 0.5 against
     * a true 8e-4) would be off by far more. */
    CHECK_NEAR(worst, 0.0, j == 0 ? 5e-3 : 1e-5);
    /* From moving_mean 0 and moving_variance 1 with momentum 0.99. */
    CHECK_NEAR(s.l.s[0][j], 0.01 * mean, 1e-6 * fmax(1.0, fabs(0.01 * mean)));
    CHECK_NEAR(s.l.s[1][j], 0.99 + 0.01 * var, 1e-6);
  }
  solo_free(&s);
}

static void test_config_errors(void) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  dt_model_t m;
  int rc = dt_config_load_string(
      cfg, "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\nmomentum = 1.5\n", "bn.ini", &err);
  CHECK_INT_EQ(rc, 0);
  rc = dt_model_build(&m, cfg, dt_shape_1d(3), &err);
  CHECK_INT_EQ(rc, DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "bn.ini:5");
  CHECK_STR_CONTAINS(err.msg, "momentum");
  dt_model_free(&m);
  dt_config_free(cfg);

  /* center = false and scale = false: no parameters, the two states remain; the
   * channels are the last axis. */
  solo_t s;
  if (solo_build(&s, "center = no\nscale = no\n", dt_shape_3d(2, 2, 3), 2)) {
    CHECK_INT_EQ(s.l.nparams, 0);
    CHECK_INT_EQ(s.l.nstates, 2);
    CHECK_INT_EQ(s.l.state_decl[0].count, 3);
    CHECK_INT_EQ(s.l.state_decl[1].count, 3);
    CHECK_INT_EQ(s.l.out_shape.ndim, 3);
    CHECK_INT_EQ(s.l.out_shape.dims[2], 3);
  }
  solo_free(&s);
}

int main(void) {
  test_gradcheck_standalone();
  test_gradcheck_models();
  test_values();
  test_large_mean();
  test_config_errors();
  gradcheck_report("test_batch_norm");
  return test_summary("test_batch_norm");
}
