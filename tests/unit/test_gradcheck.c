/* Gradient checks: every layer and every loss against central finite differences.
 *
 * Three kinds of check:
 *  - losses alone: dL/dout from dt_loss_compute against differences of the loss;
 *  - standalone layers: ops->backward called with a non-NULL dx (and dy = c, a fixed
 *    random tensor) against differences of L(x) = sum(c * y(x)), for dx and for the
 *    layer's own parameter gradients;
 *  - whole models: every entry of grad_buf after dt_model_backward against differences
 *    of the model's loss. A dense layer comes first in each model, so the first
 *    kernel's gradient is only right if every later layer's dx is right.
 *
 * Shapes, inputs, targets and parameters are drawn from a fixed seed, so a failure
 * reproduces.
 *
 * Tolerance. eps = 1e-3, and the step is the float-rounded perturbation
 * (w + eps) - (w - eps). The loss is accumulated in double (dt_loss_compute and the
 * standalone functional do so), but the forward pass runs in float32, so the loss
 * carries rounding of about one float ulp, FLT_EPSILON * |L| (measured: a deep stack
 * with L = 2.83 jitters by +-8e-8 between neighbouring parameter values). Divided by
 * the step 2 * eps that is noise of up to NOISE = FLT_EPSILON * max(|L|, 1) / (2 eps),
 * about 6e-5 for a loss of order one, in the numeric derivative. A coordinate passes
 * if its relative error |a - n| / max(|a| + |n|, 1e-4) is below 2e-2, or, for small
 * gradients where that ratio measures the noise rather than the gradient, if
 * |a - n| <= NOISE. A relative error of 2e-2 is far above the O(eps^2) truncation and
 * the noise on gradients of ordinary size, and far below what a real mistake gives (a
 * wrong sign, a missing factor or a dropped term give 0.3 to 2). The pure relative
 * test with floor 1e-4 and no noise term is not usable in float32 at eps = 1e-3: it
 * fails on gradients of 1e-5..1e-3 whose numeric estimate is off by 1e-5..7e-5, and
 * the same coordinates pass at eps = 1e-2 (checked when this test was written). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/loss.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"
#include "test_util.h"

#define EPS 1e-3f
#define REL_TOL 2e-2
#define REL_FLOOR 1e-4
/* Pre-activations of ReLU-like layers are kept this far from the kink: a parameter
 * perturbation of EPS moves them by at most EPS * max|x| (inputs are in [-1, 1]) plus
 * the effect through earlier layers, so 10 * EPS leaves a wide margin. */
#define KINK_MARGIN (10.0f * EPS)

static int coords_checked, coords_small, worst_line;
static double worst_rel;
static char worst_what[256];

static double rel_err(double a, double n) {
  double d = fabs(a) + fabs(n);
  return fabs(a - n) / (d > REL_FLOOR ? d : REL_FLOOR);
}

/* One comparison (loss = the value of the function differentiated, for the noise
 * allowance); on failure prints which case, tensor and coordinate. */
static void check_grad(const char *what, const char *tensor, size_t idx, double analytic,
                       double numeric, double loss, int line) {
  const double r = rel_err(analytic, numeric);
  const double noise = FLT_EPSILON * fmax(fabs(loss), 1.0) / (2.0 * EPS);
  const bool rel_ok = r < REL_TOL, noise_ok = fabs(analytic - numeric) <= noise;
  /* Below this size the noise allowance is the looser of the two criteria. */
  const bool small = fabs(analytic) + fabs(numeric) < noise / REL_TOL;
  coords_checked++;
  coords_small += small;
  if (!small && r > worst_rel) {
    worst_rel = r;
    worst_line = line;
    snprintf(worst_what, sizeof worst_what, "%.150s %.64s[%zu]", what, tensor, idx);
  }
  if (rel_ok || noise_ok) {
    test_passed_count++;
  } else {
    test_failed_count++;
    fprintf(stderr,
            "%s:%d: %s: %s[%zu]: analytic %.8g, numeric %.8g, relative error %.3g >= %.3g "
            "and difference %.3g > float noise %.3g\n",
            __FILE__, line, what, tensor, idx, analytic, numeric, r, REL_TOL,
            fabs(analytic - numeric), noise);
  }
}

static float uniform(dt_rng_t *r, float lo, float hi) { return lo + (hi - lo) * dt_rng_uniform(r); }
static int irange(dt_rng_t *r, int lo, int hi) {
  return lo + (int)dt_rng_below(r, (uint64_t)(hi - lo + 1));
}

/* ---- model helpers ---- */

typedef struct {
  dt_config_t *cfg;
  dt_model_t m;
  int batch, in, out;
  float *x;        /* (batch, in) */
  int32_t *labels; /* (batch) */
  float *targets;  /* (batch, out) */
  bool training;
  uint64_t fwd_seed; /* the rng is re-seeded with it before every forward */
} net_t;

static bool net_build(net_t *n, const char *text, int in, int batch) {
  memset(n, 0, sizeof *n);
  dt_error_t err = {0};
  n->cfg = dt_config_new();
  n->batch = batch;
  n->in = in;
  int rc = dt_config_load_string(n->cfg, text, "test", &err);
  if (!rc) rc = dt_model_build(&n->m, n->cfg, dt_shape_1d(in), &err);
  if (!rc) rc = dt_model_prepare(&n->m, batch, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "  building\n%s\nfailed: %s\n", text, err.msg);
    return false;
  }
  n->out = (int)dt_model_output_size(&n->m);
  n->x = malloc(sizeof(float) * (size_t)batch * in);
  n->labels = malloc(sizeof(int32_t) * (size_t)batch);
  n->targets = malloc(sizeof(float) * (size_t)batch * n->out);
  return n->x && n->labels && n->targets;
}

static void net_free(net_t *n) {
  dt_model_free(&n->m);
  dt_config_free(n->cfg);
  free(n->x);
  free(n->labels);
  free(n->targets);
}

/* Runs forward on n->x (the same dropout mask every time) and returns the output. */
static const float *net_forward(net_t *n) {
  dt_rng_t rng;
  dt_rng_seed(&rng, n->fwd_seed);
  memcpy(n->m.acts[0], n->x, sizeof(float) * (size_t)n->batch * n->in);
  return dt_model_forward(&n->m, n->batch, n->training, &rng);
}

static double net_loss(net_t *n, float *dout) {
  const float *y = net_forward(n);
  return dt_loss_compute(n->m.loss, y, n->batch, n->out, n->labels, n->targets, dout);
}

/* Initializer values for kernels; biases (zeros by default) moved away from zero so
 * that a bias term that is ignored in forward or backward shows. */
static void net_init(net_t *n, dt_rng_t *rng) {
  dt_model_init_params(&n->m, rng);
  for (int p = 0; p < n->m.nparams; p++) {
    const dt_param_info_t *pi = &n->m.params[p];
    if (!pi->decay)
      for (size_t i = 0; i < pi->count; i++)
        n->m.param_buf[pi->offset + i] += uniform(rng, -0.5f, 0.5f);
  }
}

/* True if the input of any ReLU-like layer is within KINK_MARGIN of 0. */
static bool near_kink(net_t *n) {
  net_forward(n);
  for (int i = 0; i < n->m.nrun; i++) {
    const char *t = n->m.layers[i].ops->type;
    if (strcmp(t, "relu") && strcmp(t, "leaky_relu")) continue;
    size_t cnt = (size_t)n->batch * dt_shape_size(&n->m.layers[i].in_shape);
    for (size_t k = 0; k < cnt; k++)
      if (fabsf(n->m.acts[i][k]) < KINK_MARGIN) return true;
  }
  return false;
}

/* Targets for the loss: labels for CE, [0,1] for BCE (soft and hard), and for the
 * regression losses values at least 0.1 away from the current output so that MAE has
 * no tie (a kink) within reach of the perturbation. */
static void net_targets(net_t *n, dt_rng_t *rng) {
  const float *y = net_forward(n);
  for (int b = 0; b < n->batch; b++) n->labels[b] = (int32_t)dt_rng_below(rng, (uint64_t)n->out);
  for (size_t i = 0; i < (size_t)n->batch * n->out; i++) {
    switch (n->m.loss) {
      case DT_LOSS_BCE_LOGITS:
        n->targets[i] = i % 3 == 0 ? (float)(dt_rng_below(rng, 2)) : dt_rng_uniform(rng);
        break;
      default: {
        float off = uniform(rng, 0.1f, 1.0f);
        n->targets[i] = y[i] + (dt_rng_below(rng, 2) ? off : -off);
      }
    }
  }
}

/* Checks every parameter gradient of the model against central differences. */
static void net_check_params(net_t *n, const char *what, int line) {
  dt_model_t *m = &n->m;
  const double loss = net_loss(n, m->dout);
  dt_model_backward(m, n->batch);
  float *analytic = malloc(sizeof(float) * m->num_params);
  memcpy(analytic, m->grad_buf, sizeof(float) * m->num_params);
  /* Gradients are overwritten, not accumulated: a second backward gives the same. */
  net_loss(n, m->dout);
  dt_model_backward(m, n->batch);
  CHECK(memcmp(analytic, m->grad_buf, sizeof(float) * m->num_params) == 0);

  for (int p = 0; p < m->nparams; p++) {
    const dt_param_info_t *pi = &m->params[p];
    for (size_t i = 0; i < pi->count; i++) {
      float *w = &m->param_buf[pi->offset + i];
      const float w0 = *w;
      *w = w0 + EPS;
      const float hi = *w;
      double lp = net_loss(n, NULL);
      *w = w0 - EPS;
      const float lo = *w;
      double lm = net_loss(n, NULL);
      *w = w0;
      check_grad(what, pi->name, i, analytic[pi->offset + i], (lp - lm) / ((double)hi - lo), loss,
                 line);
    }
  }
  free(analytic);
}

/* Builds the model `text` (its first layer must be dense, units written as %d for random
 * widths) `trials` times with random sizes and checks all parameter gradients. */
static void gradcheck_model(const char *what, const char *fmt, int nwidths, bool training,
                            int trials, uint64_t seed, int line) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  for (int t = 0; t < trials; t++) {
    int w[4];
    for (int i = 0; i < 4; i++) w[i] = irange(&rng, 2, 9);
    char text[1024];
    switch (nwidths) {
      case 1:
        snprintf(text, sizeof text, fmt, w[0]);
        break;
      case 2:
        snprintf(text, sizeof text, fmt, w[0], w[1]);
        break;
      case 3:
        snprintf(text, sizeof text, fmt, w[0], w[1], w[2]);
        break;
      default:
        snprintf(text, sizeof text, fmt, w[0], w[1], w[2], w[3]);
        break;
    }
    net_t n;
    int in = irange(&rng, 2, 9), batch = irange(&rng, 2, 5);
    if (!net_build(&n, text, in, batch)) {
      net_free(&n);
      continue;
    }
    n.training = training;
    n.fwd_seed = dt_rng_u64(&rng);
    /* Parameters and inputs drawn until no ReLU input sits near its kink. */
    int tries = 0;
    do {
      net_init(&n, &rng);
      for (int i = 0; i < batch * in; i++) n.x[i] = uniform(&rng, -1.0f, 1.0f);
    } while (near_kink(&n) && ++tries < 1000);
    CHECK(tries < 1000);
    net_targets(&n, &rng);
    char label[192];
    snprintf(label, sizeof label, "%.64s (trial %d, batch %d, in %d)", what, t, batch, in);
    net_check_params(&n, label, line);
    net_free(&n);
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

/* ---- standalone layers: ops->backward with a non-NULL dx ---- */

/* L(x) = sum(c * y(x)) in double, for the layer of the one-layer model in n. */
static double functional(net_t *n, const float *c) {
  const float *y = net_forward(n);
  size_t cnt = (size_t)n->batch * n->out;
  double s = 0.0;
  for (size_t i = 0; i < cnt; i++) s += (double)c[i] * y[i];
  return s;
}

/* Builds the one-layer model `section` (loss mse, so nothing is fused), then checks dx
 * and the layer's parameter gradients from ops->backward(dy = c). Inputs are kept at
 * least 0.05 from zero (the ReLU kink) and are large enough for softmax/sigmoid to
 * be away from their linear region. */
static void gradcheck_layer(const char *what, const char *section, bool training, uint64_t seed,
                            int trials, int line) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  for (int t = 0; t < trials; t++) {
    char text[512];
    int units = irange(&rng, 2, 9);
    snprintf(text, sizeof text, "[model]\nloss = mse\n[layer.1]\n%s", section);
    if (strstr(section, "%d")) {
      char tmp[512];
      snprintf(tmp, sizeof tmp, text, units);
      memcpy(text, tmp, sizeof text);
    }
    net_t n;
    int in = irange(&rng, 2, 9), batch = irange(&rng, 2, 5);
    if (!net_build(&n, text, in, batch)) {
      net_free(&n);
      continue;
    }
    n.training = training;
    n.fwd_seed = dt_rng_u64(&rng);
    net_init(&n, &rng);
    for (int i = 0; i < batch * in; i++) {
      float v = uniform(&rng, 0.05f, 2.0f);
      n.x[i] = dt_rng_below(&rng, 2) ? v : -v;
    }
    size_t nout = (size_t)batch * n.out, nin = (size_t)batch * in;
    float *c = malloc(sizeof(float) * nout), *dx = malloc(sizeof(float) * nin);
    for (size_t i = 0; i < nout; i++) c[i] = uniform(&rng, -1.0f, 1.0f);

    dt_layer_t *l = &n.m.layers[0];
    const double f0 = functional(&n, c);
    l->ops->backward(l, batch, n.m.acts[0], n.m.acts[1], c, dx);
    float *pg = malloc(sizeof(float) * (n.m.num_params ? n.m.num_params : 1));
    memcpy(pg, n.m.grad_buf, sizeof(float) * n.m.num_params);

    char label[192];
    snprintf(label, sizeof label, "%.64s (trial %d, batch %d, in %d)", what, t, batch, in);
    for (size_t k = 0; k < nin; k++) {
      const float x0 = n.x[k];
      n.x[k] = x0 + EPS;
      const float hi = n.x[k];
      double lp = functional(&n, c);
      n.x[k] = x0 - EPS;
      const float lo = n.x[k];
      double lm = functional(&n, c);
      n.x[k] = x0;
      check_grad(label, "dx", k, dx[k], (lp - lm) / ((double)hi - lo), f0, line);
    }
    for (int p = 0; p < n.m.nparams; p++) {
      const dt_param_info_t *pi = &n.m.params[p];
      for (size_t i = 0; i < pi->count; i++) {
        float *w = &n.m.param_buf[pi->offset + i];
        const float w0 = *w;
        *w = w0 + EPS;
        const float hi = *w;
        double lp = functional(&n, c);
        *w = w0 - EPS;
        const float lo = *w;
        double lm = functional(&n, c);
        *w = w0;
        check_grad(label, pi->name, i, pg[pi->offset + i], (lp - lm) / ((double)hi - lo), f0, line);
      }
    }
    free(c);
    free(dx);
    free(pg);
    net_free(&n);
  }
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
  l->ops->backward(l, batch, n.m.acts[0], n.m.acts[1], dy, dx);
  CHECK(memcmp(dx, dy, sizeof dx) == 0);

  n.training = true;
  n.fwd_seed = 99;
  y = net_forward(&n);
  l->ops->backward(l, batch, n.m.acts[0], n.m.acts[1], dy, dx);
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
    sig->ops->forward(sig, &(dt_fwd_ctx_t){0}, 1, n.x, y);
    sig->ops->backward(sig, 1, n.x, y, dy, dx);
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
  printf(
      "gradcheck: %d coordinates compared, %d of them small (checked against the float noise);\n"
      "worst relative error of the others %.3g at %s (line %d)\n",
      coords_checked, coords_small, worst_rel, worst_what, worst_line);
  return test_summary("test_gradcheck");
}
