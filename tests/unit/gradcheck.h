/* The gradient-check harness shared by the test_gradcheck* executables.
 *
 * Two kinds of check:
 *  - standalone layers (gradcheck_layer_shape): ops->backward called with a non-NULL dx
 *    (and dy = c, a fixed random tensor) against differences of L(x) = sum(c * y(x)),
 *    for dx and for the layer's own parameter gradients;
 *  - whole models (net_check_params): every entry of grad_buf after
 *    dt_model_backward against differences of the model's loss.
 * Shapes, inputs, targets and parameters are drawn from fixed seeds, so a failure
 * reproduces. Everything is static inline so that the checks count into the
 * including test's test_util.h counters.
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
#ifndef DT_TEST_GRADCHECK_H
#define DT_TEST_GRADCHECK_H

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
#include "device_util.h"
#include "test_util.h"

#define EPS 1e-3f
#define REL_TOL 2e-2
#define REL_FLOOR 1e-4
/* Pre-activations of ReLU-like layers are kept this far from the kink: a parameter
 * perturbation of EPS moves them by at most EPS * max|x| (inputs are in [-1, 1]) plus
 * the effect through earlier layers, so 10 * EPS leaves a wide margin. */
#define KINK_MARGIN (10.0f * EPS)

static int coords_checked, coords_small, worst_line; /* for gc_report */
static double worst_rel;
static char worst_what[256];

static inline double rel_err(double a, double n) {
  double d = fabs(a) + fabs(n);
  return fabs(a - n) / (d > REL_FLOOR ? d : REL_FLOOR);
}

/* One comparison (loss = the value of the function differentiated, for the noise
 * allowance); on failure prints which case, tensor and coordinate. */
static inline void check_grad(const char *what, const char *tensor, size_t idx, double analytic,
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

static inline float uniform(dt_rng_t *r, float lo, float hi) { return lo + (hi - lo) * dt_rng_uniform(r); }
static inline int irange(dt_rng_t *r, int lo, int hi) {
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

/* Builds the model `text` for inputs of the given per-sample shape. */
static inline bool net_build_shape(net_t *n, const char *text, dt_shape_t in_shape, int batch) {
  memset(n, 0, sizeof *n);
  dt_error_t err = {0};
  n->cfg = dt_config_new();
  n->batch = batch;
  n->in = (int)dt_shape_size(&in_shape);
  int in = n->in;
  int rc = dt_config_load_string(n->cfg, text, "test", &err);
  if (!rc) rc = dt_model_build(&n->m, test_device(), n->cfg, in_shape, &err);
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

/* Builds the model `text` for flat inputs of `in` values. */
static inline bool net_build(net_t *n, const char *text, int in, int batch) {
  return net_build_shape(n, text, dt_shape_1d(in), batch);
}

static inline void net_free(net_t *n) {
  dt_model_free(&n->m);
  dt_config_free(n->cfg);
  free(n->x);
  free(n->labels);
  free(n->targets);
}

/* Runs forward on n->x (the same dropout mask every time) and returns the output. */
static inline const float *net_forward(net_t *n) {
  dt_rng_t rng;
  dt_rng_seed(&rng, n->fwd_seed);
  memcpy(n->m.acts[0], n->x, sizeof(float) * (size_t)n->batch * n->in);
  return dt_model_forward(&n->m, n->batch, n->training, &rng);
}

static inline double net_loss(net_t *n, float *dout) {
  const float *y = net_forward(n);
  return dt_loss_compute(n->m.loss, y, n->batch, n->out, n->labels, n->targets, dout);
}

/* Initializer values for kernels; biases (zeros by default) moved away from zero so
 * that a bias term that is ignored in forward or backward shows. */
static inline void net_init(net_t *n, dt_rng_t *rng) {
  dt_model_init_params(&n->m, rng, NULL);
  for (int p = 0; p < n->m.nparams; p++) {
    const dt_param_info_t *pi = &n->m.params[p];
    if (!pi->decay)
      for (size_t i = 0; i < pi->count; i++)
        n->m.param_buf[pi->offset + i] += uniform(rng, -0.5f, 0.5f);
  }
}

/* True if the input of any ReLU-like layer is within KINK_MARGIN of 0. */
static inline bool near_kink(net_t *n) {
  net_forward(n);
  for (int i = 0; i < n->m.nrun; i++) {
    const char *t = n->m.layers[i].ops->type;
    if (strcmp(t, "relu") && strcmp(t, "leaky_relu")) continue;
    size_t cnt = (size_t)n->batch * dt_shape_size(&n->m.layers[i].in_shape);
    const float *x = dt_model_input_of(&n->m, i, 0);
    for (size_t k = 0; k < cnt; k++)
      if (fabsf(x[k]) < KINK_MARGIN) return true;
  }
  return false;
}

/* Targets for the loss: labels for CE, [0,1] for BCE (soft and hard), and for the
 * regression losses values at least 0.1 away from the current output so that MAE has
 * no tie (a kink) within reach of the perturbation. */
static inline void net_targets(net_t *n, dt_rng_t *rng) {
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
static inline void net_check_params(net_t *n, const char *what, int line) {
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
static inline void gradcheck_model(const char *what, const char *fmt, int nwidths, bool training,
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

/* ---- standalone layers: ops->backward with a non-NULL dx ---- */

typedef struct gc_opts gc_opts_t;

/* Draws everything a layer check depends on: parameters and states, the inputs n->x,
 * the weights c (batch * out) of L = sum(c * y), and n->fwd_seed where forward uses
 * randomness. */
typedef void gc_draw_fn(net_t *n, float *c, dt_rng_t *rng, const gc_opts_t *o);

struct gc_opts {
  bool training;    /* forward in training mode */
  int ids;          /* > 0: the inputs are token ids in [0, ids) (embeddings); dx is then
                       not checked */
  gc_draw_fn *draw; /* NULL: gc_draw_default */
};

static inline void gc_draw_c(net_t *n, float *c, dt_rng_t *rng) {
  for (size_t i = 0; i < (size_t)n->batch * n->out; i++) c[i] = uniform(rng, -1.0f, 1.0f);
}

/* The forward seed, net_init, and inputs in +-[0.05, 2] (away from the ReLU kink, and
 * large enough for softmax/sigmoid to leave their linear region) or ids. */
static inline void gc_draw_default(net_t *n, float *c, dt_rng_t *rng, const gc_opts_t *o) {
  n->fwd_seed = dt_rng_u64(rng);
  net_init(n, rng);
  for (size_t i = 0; i < (size_t)n->batch * n->in; i++) {
    if (o->ids > 0) {
      n->x[i] = (float)dt_rng_below(rng, (uint64_t)o->ids);
    } else {
      float v = uniform(rng, 0.05f, 2.0f);
      n->x[i] = dt_rng_below(rng, 2) ? v : -v;
    }
  }
  gc_draw_c(n, c, rng);
}

/* For layers without parameters or randomness whose gradient has a kink where two
 * inputs tie (the max pools): inputs a shuffled grid of values 0.01 apart, so that no
 * perturbation of EPS changes which value of a window is the largest. */
static inline void gc_draw_distinct(net_t *n, float *c, dt_rng_t *rng, const gc_opts_t *o) {
  (void)o;
  const size_t nin = (size_t)n->batch * n->in;
  for (size_t i = 0; i < nin; i++) n->x[i] = 0.01f * (float)i - 0.005f * (float)nin;
  for (size_t i = nin; i > 1; i--) {
    size_t j = (size_t)dt_rng_below(rng, i);
    float t = n->x[i - 1];
    n->x[i - 1] = n->x[j];
    n->x[j] = t;
  }
  gc_draw_c(n, c, rng);
}

/* L(x) = sum(c * y(x)) in double, for the layer of the one-layer model in n. */
static inline double functional(net_t *n, const float *c) {
  const float *y = net_forward(n);
  size_t cnt = (size_t)n->batch * n->out;
  double s = 0.0;
  for (size_t i = 0; i < cnt; i++) s += (double)c[i] * y[i];
  return s;
}

/* The central difference of functional() in the coordinate *v (an input or a
 * parameter), over the float-rounded step. */
static inline double functional_diff(net_t *n, const float *c, float *v) {
  const float v0 = *v;
  *v = v0 + EPS;
  const float hi = *v;
  const double lp = functional(n, c);
  *v = v0 - EPS;
  const float lo = *v;
  const double lm = functional(n, c);
  *v = v0;
  return (lp - lm) / ((double)hi - lo);
}

/* Checks the layer `section` (the body of its config section) on its own, for inputs of
 * in_shape and a batch of `batch`: dx (unless the inputs are ids) and the layer's
 * parameter gradients from ops->backward(dy = c), against L = sum(c * y), with what
 * opts.draw draws. The layer is the first of a model with loss mse and a flatten after
 * it, which lets the loss take outputs of any shape (and copies flat ones). */
static inline void gradcheck_layer_shape(const char *what, const char *section, dt_shape_t in_shape,
                                         int batch, gc_opts_t opts, uint64_t seed, int line) {
  char text[1024];
  snprintf(text, sizeof text, "[model]\nloss = mse\n[layer.1]\n%s[layer.2]\ntype = flatten\n",
           section);
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  net_t n;
  if (!net_build_shape(&n, text, in_shape, batch)) {
    net_free(&n);
    return;
  }
  n.training = opts.training;
  size_t nout = (size_t)batch * n.out, nin = (size_t)batch * n.in;
  float *c = malloc(sizeof(float) * nout), *dx = malloc(sizeof(float) * nin);
  (opts.draw ? opts.draw : gc_draw_default)(&n, c, &rng, &opts);

  dt_layer_t *l = &n.m.layers[0];
  functional(&n, c);
  /* The float rounding of L is that of its terms c_i y_i, whose magnitudes can add up
   * to much more than |L|: the noise allowance is taken from sum |c_i y_i|. */
  double f0 = 0.0;
  for (size_t i = 0; i < nout; i++) f0 += fabs((double)c[i] * n.m.acts[1][i]);
  const dt_exec_ctx_t ctx = dt_model_exec_ctx(&n.m, n.m.training, NULL);
  l->ops->backward(l, &ctx, batch, n.m.acts[0], n.m.acts[1], c, dx);
  float *pg = malloc(sizeof(float) * (n.m.num_params ? n.m.num_params : 1));
  memcpy(pg, n.m.grad_buf, sizeof(float) * n.m.num_params);

  char label[256], s[64];
  snprintf(label, sizeof label, "%.160s (batch %d, in %s)", what, batch,
           dt_shape_str(&in_shape, s, sizeof s));
  for (size_t k = 0; k < nin && opts.ids <= 0; k++)
    check_grad(label, "dx", k, dx[k], functional_diff(&n, c, &n.x[k]), f0, line);
  for (int p = 0; p < n.m.nparams; p++) {
    const dt_param_info_t *pi = &n.m.params[p];
    for (size_t i = 0; i < pi->count; i++)
      check_grad(label, pi->name, i, pg[pi->offset + i],
                 functional_diff(&n, c, &n.m.param_buf[pi->offset + i]), f0, line);
  }
  free(c);
  free(dx);
  free(pg);
  net_free(&n);
}

/* Prints how many coordinates were compared and the worst relative error. */
static inline void gradcheck_report(const char *name) {
  printf("%s: %d coordinates compared, %d of them small (checked against the float noise);\n"
         "worst relative error of the others %.3g at %s (line %d)\n",
         name, coords_checked, coords_small, worst_rel, worst_what, worst_line);
}

#endif
