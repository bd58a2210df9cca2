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

/* gradcheck_layer_shape on a batch_norm layer with the extra keys `keys`; (H, W, C) and
 * (T, F) inputs included (the harness flattens the output for the loss). */
static void check_bn(const char *what, const char *keys, dt_shape_t in, int batch, gc_opts_t opts,
                     uint64_t seed, int line) {
  char body[256];
  snprintf(body, sizeof body, "type = batch_norm\n%s", keys);
  gradcheck_layer_shape(what, body, in, batch, opts, seed, line);
}

/* gamma around 1 and beta around 0 (net_init), moving averages away from 0 and 1 (what
 * eval mode normalizes with), inputs in [-2, 2]. */
static void draw_moved(net_t *n, float *c, dt_rng_t *rng, const gc_opts_t *o) {
  (void)o;
  net_init(n, rng);
  const dt_layer_t *l = &n->m.layers[0];
  for (size_t i = 0; i < l->state_decl[0].count; i++) {
    l->s[0][i] = uniform(rng, -0.5f, 0.5f);
    l->s[1][i] = uniform(rng, 0.3f, 2.0f);
  }
  for (size_t i = 0; i < (size_t)n->batch * n->in; i++) {
    n->x[i] = uniform(rng, -2.0f, 2.0f);
    c[i] = uniform(rng, -1.0f, 1.0f);
  }
}

/* Under both draws: gradcheck.h's default (averages at their initial 0 and 1, inputs in
 * +-[0.05, 2]) and draw_moved. */
static void test_gradcheck_standalone(void) {
  const gc_opts_t train = {.training = true}, train_moved = {.training = true, .draw = draw_moved};
  /* Training mode: dx goes through the batch mean and variance. */
  check_bn("batch_norm (F) training", "", dt_shape_1d(5), 4, train, 11, __LINE__);
  check_bn("batch_norm (F) training, batch 2", "", dt_shape_1d(3), 2, train, 12, __LINE__);
  check_bn("batch_norm (H,W,C) training", "", dt_shape_3d(3, 2, 4), 3, train_moved, 13, __LINE__);
  check_bn("batch_norm (T,F) training", "momentum = 0.5\nepsilon = 0.01\n",
           (dt_shape_t){2, {4, 3, 1, 1}}, 2, train_moved, 14, __LINE__);
  check_bn("batch_norm (H,W,C) without gamma/beta (training)", "center = false\nscale = false\n",
           dt_shape_3d(2, 2, 3), 2, train_moved, 15, __LINE__);
  check_bn("batch_norm (H,W,C) beta only (training)", "scale = false\n", dt_shape_3d(2, 2, 3), 2,
           train_moved, 16, __LINE__);
  check_bn("batch_norm gamma only (training)", "center = false\n", dt_shape_1d(4), 3, train, 16,
           __LINE__);
  /* 17 channels: blocks of one row (fewer channels are walked several rows at a time). */
  check_bn("batch_norm (H,W,C) 17 channels (training)", "", dt_shape_3d(2, 1, 17), 2, train_moved,
           20, __LINE__);
  check_bn("batch_norm (F) 16 features training", "", dt_shape_1d(16), 3, train, 21, __LINE__);
  /* A batch of one sample of (1, 1, C): every channel has a single value, x_hat = 0. */
  check_bn("batch_norm single value per channel", "", dt_shape_3d(1, 1, 3), 1, train_moved, 19,
           __LINE__);
  /* Eval mode: the affine map of the moving averages, at their initial 0 and 1 and moved
   * away from them. */
  check_bn("batch_norm (F) eval", "", dt_shape_1d(5), 4, (gc_opts_t){0}, 17, __LINE__);
  check_bn("batch_norm (H,W,C) eval, moved averages", "", dt_shape_3d(2, 3, 4), 2,
           (gc_opts_t){.draw = draw_moved}, 18, __LINE__);
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
  dt_model_init_params(&n.m, &rng, NULL);
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
  dt_model_init_params(&n.m, &rng, NULL);
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
  net_t n;
  if (!net_build_shape(&n,
                       "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\nepsilon = 1e-6\n"
                       "[layer.2]\ntype = flatten\n",
                       dt_shape_3d(4, 4, 2), 8)) {
    net_free(&n);
    return;
  }
  dt_layer_t *l = &n.m.layers[0];
  l->w[0][0] = l->w[0][1] = 1.0f;
  l->s[1][0] = l->s[1][1] = 1.0f;
  n.training = true;
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  const int m = 8 * 16;
  float *x = n.x;
  for (int r = 0; r < m; r++) {
    x[2 * r] = 3000.0f + uniform(&rng, -0.05f, 0.05f);
    x[2 * r + 1] = uniform(&rng, -3.0f, 3.0f);
  }
  const float *y = net_forward(&n);
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
    CHECK_NEAR(l->s[0][j], 0.01 * mean, 1e-6 * fmax(1.0, fabs(0.01 * mean)));
    CHECK_NEAR(l->s[1][j], 0.99 + 0.01 * var, 1e-6);
  }
  net_free(&n);
}

static void test_config_errors(void) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  dt_model_t m;
  int rc = dt_config_load_string(
      cfg, "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\nmomentum = 1.5\n", "bn.ini", &err);
  CHECK_INT_EQ(rc, 0);
  rc = dt_model_build(&m, test_device(), cfg, dt_shape_1d(3), &err);
  CHECK_INT_EQ(rc, DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "bn.ini:5");
  CHECK_STR_CONTAINS(err.msg, "momentum");
  dt_model_free(&m);
  dt_config_free(cfg);

  /* center = false and scale = false: no parameters, the two states remain; the
   * channels are the last axis. */
  net_t n;
  if (net_build_shape(&n,
                      "[model]\nloss = mse\n[layer.1]\ntype = batch_norm\ncenter = no\n"
                      "scale = no\n[layer.2]\ntype = flatten\n",
                      dt_shape_3d(2, 2, 3), 2)) {
    const dt_layer_t *l = &n.m.layers[0];
    CHECK_INT_EQ(l->nparams, 0);
    CHECK_INT_EQ(l->nstates, 2);
    CHECK_INT_EQ(l->state_decl[0].count, 3);
    CHECK_INT_EQ(l->state_decl[1].count, 3);
    CHECK_INT_EQ(l->out_shape.ndim, 3);
    CHECK_INT_EQ(l->out_shape.dims[2], 3);
  }
  net_free(&n);
}

int main(void) {
  test_gradcheck_standalone();
  test_gradcheck_models();
  test_values();
  test_large_mean();
  test_config_errors();
  gradcheck_report("test_batch_norm");
  test_device_release();
  return test_summary("test_batch_norm");
}
