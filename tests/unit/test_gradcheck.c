/* Gradient checks of the dense-network layers and every loss against central finite
 * differences (the harness and its tolerance are in gradcheck.h), plus hand-computed
 * loss values and numerical stability.
 *
 * Three kinds of check: losses alone (dL/dout from dt_loss_compute against
 * differences of the loss), standalone layers, and whole models. A dense layer comes
 * first in each model, so the first kernel's gradient is only right if every later
 * layer's dx is right. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* gradcheck_layer_shape over `trials` random flat input sizes and batches; a "%d" in
 * `section` becomes a random width. */
static void gradcheck_layer(const char *what, const char *section, bool training, uint64_t seed,
                            int trials, int line) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  for (int t = 0; t < trials; t++) {
    char body[512];
    snprintf(body, sizeof body, section, irange(&rng, 2, 9));
    int in = irange(&rng, 2, 9), batch = irange(&rng, 2, 5);
    char label[128];
    snprintf(label, sizeof label, "%.64s (trial %d)", what, t);
    gradcheck_layer_shape(label, body, dt_shape_1d(in), batch, (gc_opts_t){.training = training},
                          dt_rng_u64(&rng), line);
  }
}

static void test_models(void) {
  /* Single dense layer under every loss. */
  gradcheck_model("dense mse",
                  "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = %d\n"
                  "kernel_initializer = he_normal\n",
                  1, false, 3, 101, __LINE__);
  gradcheck_model("dense mae",
                  "[model]\nloss = mae\n[layer.1]\ntype = dense\nunits = %d\n"
                  "kernel_initializer = glorot_normal\n",
                  1, false, 3, 102, __LINE__);
  gradcheck_model("dense ce",
                  "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\n"
                  "type = dense\nunits = %d\nkernel_initializer = he_uniform\n",
                  1, false, 3, 103, __LINE__);
  gradcheck_model("dense bce",
                  "[model]\nloss = binary_crossentropy\n[layer.1]\n"
                  "type = dense\nunits = %d\nkernel_initializer = he_uniform\n",
                  1, false, 3, 104, __LINE__);

  /* Each activation between two dense layers: dense_1's kernel gradient goes through
   * the activation's dx and dense_2's dx. */
  static const char *const mid[] = {"type = relu\n", "type = leaky_relu\nalpha = 0.2\n",
                                    "type = sigmoid\n", "type = tanh\n", "type = softmax\n"};
  for (size_t a = 0; a < sizeof mid / sizeof mid[0]; a++) {
    char fmt[512], what[64];
    snprintf(fmt, sizeof fmt,
             "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = %%d\n"
             "kernel_initializer = he_normal\n[layer.2]\n%s[layer.3]\ntype = dense\n"
             "units = %%d\nkernel_initializer = glorot_uniform\n",
             mid[a]);
    snprintf(what, sizeof what, "dense-%.*s-dense mse", (int)strcspn(mid[a] + 7, "\n"), mid[a] + 7);
    gradcheck_model(what, fmt, 2, false, 3, 200 + a, __LINE__);
  }

  /* Dropout in training mode (same mask for every evaluation) and in eval mode. */
  static const char dropout[] =
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = %d\n"
      "kernel_initializer = he_normal\n[layer.2]\ntype = dropout\nrate = 0.3\n"
      "[layer.3]\ntype = dense\nunits = %d\n";
  gradcheck_model("dense-dropout-dense (training)", dropout, 2, true, 4, 301, __LINE__);
  gradcheck_model("dense-dropout-dense (eval)", dropout, 2, false, 2, 302, __LINE__);

  /* Softmax fused into cross-entropy, sigmoid fused into BCE, and a deep stack of
   * every layer type (activation = ... form included) ending in the fused softmax. */
  gradcheck_model("dense-tanh-dense-softmax ce",
                  "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = dense\n"
                  "units = %d\nkernel_initializer = he_normal\nactivation = tanh\n[layer.2]\n"
                  "type = dense\nunits = %d\n[layer.3]\ntype = softmax\n",
                  2, false, 3, 401, __LINE__);
  gradcheck_model("dense-tanh-dense-sigmoid bce",
                  "[model]\nloss = binary_crossentropy\n[layer.1]\ntype = dense\nunits = %d\n"
                  "kernel_initializer = he_normal\n[layer.2]\ntype = tanh\n[layer.3]\n"
                  "type = dense\nunits = %d\nactivation = sigmoid\n",
                  2, false, 3, 402, __LINE__);
  gradcheck_model("dense-sigmoid-dense mae",
                  "[model]\nloss = mae\n[layer.1]\ntype = dense\nunits = %d\n"
                  "kernel_initializer = he_normal\nactivation = sigmoid\n[layer.2]\n"
                  "type = dense\nunits = %d\n",
                  2, false, 3, 403, __LINE__);
  gradcheck_model("deep stack ce",
                  "[model]\nloss = sparse_categorical_crossentropy\n"
                  "[layer.1]\ntype = dense\nunits = %d\nkernel_initializer = he_normal\n"
                  "activation = relu\n"
                  "[layer.2]\ntype = dense\nunits = %d\nkernel_initializer = he_uniform\n"
                  "activation = leaky_relu\nalpha = 0.2\n"
                  "[layer.3]\ntype = dropout\nrate = 0.25\n"
                  "[layer.4]\ntype = dense\nunits = %d\nkernel_initializer = glorot_normal\n"
                  "activation = tanh\n"
                  "[layer.5]\ntype = dense\nunits = %d\nactivation = softmax\n",
                  4, true, 4, 404, __LINE__);
}

static void test_layers(void) {
  gradcheck_layer("dense", "type = dense\nunits = %d\nkernel_initializer = he_normal\n", false, 11,
                  3, __LINE__);
  gradcheck_layer("relu", "type = relu\n", false, 12, 3, __LINE__);
  gradcheck_layer("leaky_relu", "type = leaky_relu\nalpha = 0.2\n", false, 13, 3, __LINE__);
  gradcheck_layer("sigmoid", "type = sigmoid\n", false, 14, 3, __LINE__);
  gradcheck_layer("tanh", "type = tanh\n", false, 15, 3, __LINE__);
  gradcheck_layer("softmax", "type = softmax\n", false, 16, 3, __LINE__);
  gradcheck_layer("dropout (training)", "type = dropout\nrate = 0.4\n", true, 17, 3, __LINE__);
  gradcheck_layer("dropout (eval)", "type = dropout\nrate = 0.4\n", false, 18, 2, __LINE__);
}

/* Dropout: eval mode is exactly the identity (forward and backward); training mode
 * zeroes some inputs, scales the rest by 1 / (1 - rate), and backward uses that mask. */
static void test_dropout_modes(void) {
  net_t n;
  const int batch = 4, in = 50;
  if (!net_build(&n, "[model]\nloss = mse\n[layer.1]\ntype = dropout\nrate = 0.5\n", in, batch)) {
    net_free(&n);
    return;
  }
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  for (int i = 0; i < batch * in; i++) n.x[i] = uniform(&rng, 0.5f, 1.5f);
  float dy[200], dx[200];
  for (int i = 0; i < batch * in; i++) dy[i] = uniform(&rng, -1.0f, 1.0f);
  dt_layer_t *l = &n.m.layers[0];

  n.training = false;
  const float *y = net_forward(&n);
  CHECK(memcmp(y, n.x, sizeof(float) * batch * in) == 0);
  dt_exec_ctx_t ctx = dt_model_exec_ctx(&n.m, n.training, NULL);
  l->ops->backward(l, &ctx, batch, n.m.acts[0], n.m.acts[1], dy, dx);
  CHECK(memcmp(dx, dy, sizeof dx) == 0);

  n.training = true;
  n.fwd_seed = 99;
  y = net_forward(&n);
  ctx.training = n.training;
  l->ops->backward(l, &ctx, batch, n.m.acts[0], n.m.acts[1], dy, dx);
  int zeros = 0, bad = 0;
  for (int i = 0; i < batch * in; i++) {
    if (y[i] == 0.0f) {
      zeros++;
      bad += dx[i] != 0.0f;
    } else {
      bad += fabsf(y[i] - 2.0f * n.x[i]) > 1e-6f || fabsf(dx[i] - 2.0f * dy[i]) > 1e-6f;
    }
  }
  CHECK_INT_EQ(bad, 0);
  /* 200 draws at rate 0.5: 100 +- 5 sigma is [65, 135]. */
  CHECK(zeros > 65 && zeros < 135);
  /* The same seed gives the same mask. */
  float first[200];
  memcpy(first, y, sizeof first);
  y = net_forward(&n);
  CHECK(memcmp(first, y, sizeof first) == 0);
  net_free(&n);
}

/* ---- losses alone ---- */

static void gradcheck_loss(dt_loss_kind kind, uint64_t seed, int line) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  for (int t = 0; t < 4; t++) {
    int batch = irange(&rng, 2, 5), dim = irange(&rng, 2, 9);
    size_t n = (size_t)batch * dim;
    float *out = malloc(sizeof(float) * n), *tg = malloc(sizeof(float) * n);
    float *dout = malloc(sizeof(float) * n);
    int32_t *lab = malloc(sizeof(int32_t) * batch);
    for (size_t i = 0; i < n; i++) {
      out[i] = uniform(&rng, -3.0f, 3.0f);
      if (kind == DT_LOSS_BCE_LOGITS) {
        tg[i] = i % 4 == 0 ? (float)dt_rng_below(&rng, 2) : dt_rng_uniform(&rng);
      } else {
        /* At least 0.1 from the output: MAE has no tie near the perturbation. */
        float off = uniform(&rng, 0.1f, 2.0f);
        tg[i] = out[i] + (dt_rng_below(&rng, 2) ? off : -off);
      }
    }
    for (int b = 0; b < batch; b++) lab[b] = (int32_t)dt_rng_below(&rng, (uint64_t)dim);
    double l0 = dt_loss_compute(kind, out, batch, dim, lab, tg, dout);
    CHECK(isfinite(l0) && l0 >= 0.0);
    /* dout NULL gives the same value. */
    CHECK(dt_loss_compute(kind, out, batch, dim, lab, tg, NULL) == l0);
    char what[192];
    snprintf(what, sizeof what, "loss %s (batch %d, dim %d)", dt_loss_names[kind], batch, dim);
    for (size_t i = 0; i < n; i++) {
      const float o = out[i];
      out[i] = o + EPS;
      const float hi = out[i];
      double lp = dt_loss_compute(kind, out, batch, dim, lab, tg, NULL);
      out[i] = o - EPS;
      const float lo = out[i];
      double lm = dt_loss_compute(kind, out, batch, dim, lab, tg, NULL);
      out[i] = o;
      check_grad(what, "dout", i, dout[i], (lp - lm) / ((double)hi - lo), l0, line);
    }
    free(out);
    free(tg);
    free(dout);
    free(lab);
  }
}

static void test_losses(void) {
  gradcheck_loss(DT_LOSS_SOFTMAX_CE, 501, __LINE__);
  gradcheck_loss(DT_LOSS_BCE_LOGITS, 502, __LINE__);
  gradcheck_loss(DT_LOSS_MSE, 503, __LINE__);
  gradcheck_loss(DT_LOSS_MAE, 504, __LINE__);
}

/* Hand-computed values (Python: math.log(math.exp(1)+math.exp(2)+math.exp(3)) - 3). */
static void test_loss_values(void) {
  /* Softmax CE of logits [1,2,3], label 2: log(e + e^2 + e^3) - 3 = 0.40760596444.
   * Softmax = [0.09003057, 0.24472847, 0.66524096]; the gradient is softmax - onehot,
   * divided by the batch (2 here: the second row repeats the first with label 0,
   * loss log(e + e^2 + e^3) - 1 = 2.40760596444). */
  const float z[6] = {1, 2, 3, 1, 2, 3};
  const int32_t lab[2] = {2, 0};
  float dz[6];
  double l = dt_loss_compute(DT_LOSS_SOFTMAX_CE, z, 1, 3, lab, NULL, dz);
  CHECK_NEAR(l, 0.40760596444, 1e-6);
  CHECK_NEAR(dz[0], 0.09003057, 1e-6);
  CHECK_NEAR(dz[1], 0.24472847, 1e-6);
  CHECK_NEAR(dz[2], 0.66524096 - 1.0, 1e-6);
  l = dt_loss_compute(DT_LOSS_SOFTMAX_CE, z, 2, 3, lab, NULL, dz);
  CHECK_NEAR(l, (0.40760596444 + 2.40760596444) / 2, 1e-6);
  CHECK_NEAR(dz[2], (0.66524096 - 1.0) / 2, 1e-6);
  CHECK_NEAR(dz[3], (0.09003057 - 1.0) / 2, 1e-6);
  CHECK_NEAR(dz[5], 0.66524096 / 2, 1e-6);

  /* Through a model: dense -> softmax with CE runs only the dense layer; the output is
   * logits, and the loss on them is the fused softmax CE. */
  net_t n;
  if (net_build(&n,
                "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = dense\n"
                "units = 3\nactivation = softmax\n",
                2, 1)) {
    CHECK_INT_EQ(n.m.nlayers, 2);
    CHECK_INT_EQ(n.m.nrun, 1);
    /* kernel (2, 3) = 0, bias = [1, 2, 3]: logits [1, 2, 3] whatever the input. */
    memset(n.m.param_buf, 0, sizeof(float) * n.m.num_params);
    n.m.param_buf[6] = 1, n.m.param_buf[7] = 2, n.m.param_buf[8] = 3;
    n.x[0] = 0.5f, n.x[1] = -0.25f;
    n.labels[0] = 2;
    const float *y = net_forward(&n);
    CHECK_NEAR(y[0], 1.0, 1e-6);
    CHECK_NEAR(y[2], 3.0, 1e-6);
    CHECK_NEAR(net_loss(&n, n.m.dout), 0.40760596444, 1e-6);
    dt_model_backward(&n.m, 1);
    /* Bias gradient = softmax - onehot; kernel gradient = x^T (softmax - onehot). */
    CHECK_NEAR(n.m.grad_buf[8], 0.66524096 - 1.0, 1e-6);
    CHECK_NEAR(n.m.grad_buf[0], 0.5 * 0.09003057, 1e-6);
    CHECK_NEAR(n.m.grad_buf[4], -0.25 * 0.24472847, 1e-6);
  }
  net_free(&n);

  /* BCE from logits: z = 0, t = 1: log 2; z = 2, t = 0.25: log(1 + e^2) - 0.5 = 1.6269280110;
   * gradients sigmoid(z) - t over batch * dim = 2 elements. */
  const float bz[2] = {0.0f, 2.0f}, bt[2] = {1.0f, 0.25f};
  float bd[2];
  l = dt_loss_compute(DT_LOSS_BCE_LOGITS, bz, 1, 2, NULL, bt, bd);
  CHECK_NEAR(l, (0.69314718056 + 1.6269280110) / 2, 1e-6);
  CHECK_NEAR(bd[0], (0.5 - 1.0) / 2, 1e-6);
  CHECK_NEAR(bd[1], (0.88079707798 - 0.25) / 2, 1e-6);

  /* MSE and MAE over batch 2, dim 2: differences 1, -2, 0.5, 3. */
  const float ro[4] = {1, 0, 2, 3}, rt[4] = {0, 2, 1.5f, 0};
  float rd[4];
  l = dt_loss_compute(DT_LOSS_MSE, ro, 2, 2, NULL, rt, rd);
  CHECK_NEAR(l, (1 + 4 + 0.25 + 9) / 4.0, 1e-9);
  CHECK_NEAR(rd[1], 2 * -2.0 / 4, 1e-7);
  CHECK_NEAR(rd[3], 2 * 3.0 / 4, 1e-7);
  l = dt_loss_compute(DT_LOSS_MAE, ro, 2, 2, NULL, rt, rd);
  CHECK_NEAR(l, (1 + 2 + 0.5 + 3) / 4.0, 1e-9);
  CHECK_NEAR(rd[0], 0.25, 1e-7);
  CHECK_NEAR(rd[1], -0.25, 1e-7);
}

/* Large logits give finite losses and gradients with the right limits. */
static void test_stability(void) {
  const float z[6] = {1000.0f, 0.0f, -1000.0f, -1000.0f, 0.0f, 1000.0f};
  float dz[6];
  int32_t lab[2] = {0, 0};
  /* Row 1: label is the max: loss 0. Row 2: label is 2000 below the max: loss 2000. */
  double l = dt_loss_compute(DT_LOSS_SOFTMAX_CE, z, 2, 3, lab, NULL, dz);
  CHECK(isfinite(l));
  CHECK_NEAR(l, (0.0 + 2000.0) / 2, 1e-3);
  bool finite = true;
  for (int i = 0; i < 6; i++) finite &= isfinite(dz[i]) != 0;
  CHECK(finite);
  CHECK_NEAR(dz[0], 0.0, 1e-7);
  CHECK_NEAR(dz[3], -0.5, 1e-7);
  CHECK_NEAR(dz[5], 0.5, 1e-7);

  /* BCE at +-100: loss 100 where the target disagrees, 0 where it agrees; gradient
   * (sigmoid(z) - t) / 4. */
  const float bz[4] = {100.0f, -100.0f, 100.0f, -100.0f}, bt[4] = {0, 1, 1, 0};
  float bd[4];
  l = dt_loss_compute(DT_LOSS_BCE_LOGITS, bz, 1, 4, NULL, bt, bd);
  CHECK(isfinite(l));
  CHECK_NEAR(l, (100.0 + 100.0) / 4, 1e-6);
  finite = true;
  for (int i = 0; i < 4; i++) finite &= isfinite(bd[i]) != 0;
  CHECK(finite);
  CHECK_NEAR(bd[0], 0.25, 1e-7);
  CHECK_NEAR(bd[1], -0.25, 1e-7);
  CHECK_NEAR(bd[2], 0.0, 1e-7);
  CHECK_NEAR(bd[3], 0.0, 1e-7);

  /* The standalone softmax and sigmoid layers on huge inputs stay finite. */
  net_t n;
  if (net_build(&n, "[model]\nloss = mse\n[layer.1]\ntype = softmax\n[layer.2]\ntype = sigmoid\n",
                3, 1)) {
    n.x[0] = 1000.0f, n.x[1] = 0.0f, n.x[2] = -1000.0f;
    net_forward(&n);
    const float *s = n.m.acts[1], *g = n.m.acts[2];
    CHECK_NEAR(s[0], 1.0, 1e-7);
    CHECK_NEAR(s[1], 0.0, 1e-7);
    CHECK(isfinite(s[2]) && isfinite(g[0]) && isfinite(g[2]));
    n.x[0] = 200.0f, n.x[1] = -200.0f;
    dt_layer_t *sig = &n.m.layers[1];
    float y[3], dy[3] = {1, 1, 1}, dx[3];
    const dt_exec_ctx_t ctx = dt_model_exec_ctx(&n.m, false, NULL);
    sig->ops->forward(sig, &ctx, 1, n.x, y);
    sig->ops->backward(sig, &ctx, 1, n.x, y, dy, dx);
    CHECK_NEAR(y[0], 1.0, 0);
    CHECK_NEAR(y[1], 0.0, 1e-30);
    CHECK(isfinite(dx[0]) && isfinite(dx[1]));
  }
  net_free(&n);
}

int main(void) {
  test_losses();
  test_loss_values();
  test_stability();
  test_layers();
  test_dropout_modes();
  test_models();
  gradcheck_report("gradcheck");
  test_device_release();
  return test_summary("test_gradcheck");
}
