/* Tests for the optimizers and learning-rate schedules.
 *
 * Expected optimizer values are computed in this file, in double precision, by a
 * reference written step by step from the update rules in optim.h (not from optim.c);
 * a few of them are also pinned to numbers computed independently with python3 (noted
 * where they appear). The library updates in float32, so parameters are compared with
 * |got - want| <= 1e-6 * max(1, |want|): after three steps on values of order one,
 * float rounding is a few ulps (~2e-7), while the steps are 1e-3..1e-1, so a wrong or
 * missing term shows (epsilon is set large in extra cases, where its placement matters).
 * Moment buffers, whose values span 1e-5..1, are compared relatively with 1e-5 (a few
 * float ulps of accumulated rounding). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/optim.h"
#include "dtrain/schedule.h"
#include "test_util.h"

#define W_TOL 1e-6
#define MOMENT_RTOL 1e-5
#define NSTEPS 3

/* |got - want| <= 1e-6 * max(1, |want|), printing which element of which case. */
static void check_w(const char *what, int step, int i, float got, double want) {
  double tol = W_TOL * fmax(1.0, fabs(want));
  if (fabs(got - want) <= tol) {
    test_passed_count++;
  } else {
    test_failed_count++;
    fprintf(stderr, "%s:%d: %s step %d w[%d] = %.9g, expected %.9g (tolerance %.3g)\n", __FILE__,
            __LINE__, what, step, i, got, want, tol);
  }
}

static void check_moment(const char *what, const char *name, int i, float got, double want) {
  double tol = MOMENT_RTOL * fabs(want) + 1e-12;
  if (fabs(got - want) <= tol) {
    test_passed_count++;
  } else {
    test_failed_count++;
    fprintf(stderr, "%s:%d: %s %s[%d] = %.9g, expected %.9g (tolerance %.3g)\n", __FILE__, __LINE__,
            what, name, i, got, want, tol);
  }
}

/* ---- the reference: optim.h's rules, in double, one element at a time ---- */

typedef struct {
  double w, m1, m2;
} ref_state_t;

/* One step of the rule for element state s with raw gradient g; t is the 1-based step. */
static void ref_step(const dt_optim_config_t *c, ref_state_t *s, double g, double lr, bool decay,
                     int t) {
  /* Weight decay is part of the gradient, for tensors marked decay only. */
  if (decay) g = g + c->weight_decay * s->w;
  switch (c->kind) {
    case DT_OPT_SGD:
      if (c->momentum == 0.0) {
        s->w = s->w - lr * g;
      } else {
        s->m1 = c->momentum * s->m1 + g; /* buf */
        double dir = c->nesterov ? g + c->momentum * s->m1 : s->m1;
        s->w = s->w - lr * dir;
      }
      break;
    case DT_OPT_ADAM: {
      s->m1 = c->beta1 * s->m1 + (1.0 - c->beta1) * g;     /* m */
      s->m2 = c->beta2 * s->m2 + (1.0 - c->beta2) * g * g; /* v */
      double m_hat = s->m1 / (1.0 - pow(c->beta1, t));
      double v_hat = s->m2 / (1.0 - pow(c->beta2, t));
      s->w = s->w - lr * m_hat / (sqrt(v_hat) + c->eps);
      break;
    }
    case DT_OPT_RMSPROP:
      s->m1 = c->rho * s->m1 + (1.0 - c->rho) * g * g; /* v */
      s->w = s->w - lr * g / (sqrt(s->m1) + c->eps);
      break;
    case DT_OPT_ADADELTA: {
      s->m1 = c->rho * s->m1 + (1.0 - c->rho) * g * g; /* Eg */
      double d = sqrt(s->m2 + c->eps) / sqrt(s->m1 + c->eps) * g;
      s->m2 = c->rho * s->m2 + (1.0 - c->rho) * d * d; /* Ed */
      s->w = s->w - lr * d;
      break;
    }
  }
}

/* The fixed problem: a 3-element parameter vector and gradients that change per step. */
static const float w_init[3] = {0.5f, -1.2f, 2.0f};
static const float grads[NSTEPS][3] = {
    {0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.25f}, {0.2f, 0.1f, -0.6f}};

/* Runs the library and the reference side by side for NSTEPS steps, comparing the
 * parameters after every step and the moments at the end; returns the final w. */
static void run_case(const char *what, const dt_optim_config_t *cfg, float lr, float out[3]) {
  dt_optim_t o;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_optim_init(&o, cfg, 3, &err), 0);
  float w[3];
  memcpy(w, w_init, sizeof w);
  ref_state_t ref[3];
  for (int i = 0; i < 3; i++) ref[i] = (ref_state_t){(double)w_init[i], 0.0, 0.0};
  for (int t = 1; t <= NSTEPS; t++) {
    dt_optim_begin_step(&o);
    dt_optim_update(&o, w, grads[t - 1], 0, 3, lr, NULL, 0);
    for (int i = 0; i < 3; i++) {
      ref_step(cfg, &ref[i], grads[t - 1][i], lr, false, t);
      check_w(what, t, i, w[i], ref[i].w);
    }
  }
  CHECK_INT_EQ(o.step, NSTEPS);
  for (int i = 0; i < 3; i++) {
    if (o.moment1) check_moment(what, "moment1", i, o.moment1[i], ref[i].m1);
    if (o.moment2) check_moment(what, "moment2", i, o.moment2[i], ref[i].m2);
  }
  memcpy(out, w, sizeof w);
  dt_optim_free(&o);
}

static void test_rules(void) {
  float w[3];
  dt_optim_config_t c = dt_optim_defaults(DT_OPT_SGD);
  run_case("sgd", &c, 0.1f, w);
  /* Plain SGD is simple enough to write out: w - 0.1 * (g1 + g2 + g3). */
  CHECK_NEAR(w[0], 0.5 - 0.1 * (0.1 - 0.05 + 0.2), 1e-6);
  CHECK_NEAR(w[1], -1.2 - 0.1 * (-0.2 + 0.4 + 0.1), 1e-6);
  CHECK_NEAR(w[2], 2.0 - 0.1 * (0.3 + 0.25 - 0.6), 1e-6);

  c.momentum = 0.9;
  run_case("sgd momentum", &c, 0.1f, w);
  /* python3: w=.5; buf=0; for g in (.1,-.05,.2): buf=.9*buf+g; w-=.1*buf  -> 0.4624 */
  CHECK_NEAR(w[0], 0.4624, 1e-6);

  c.nesterov = true;
  run_case("sgd nesterov", &c, 0.1f, w);
  /* python3: the same loop with w -= .1*(g + .9*buf)  -> 0.44116 */
  CHECK_NEAR(w[0], 0.44116, 1e-6);

  c = dt_optim_defaults(DT_OPT_ADAM);
  run_case("adam", &c, 0.1f, w);
  /* python3 (b1 .9, b2 .999, eps 1e-7, lr .1): w[0] after 3 steps = 0.3075553194. */
  CHECK_NEAR(w[0], 0.3075553194, 1e-6);
  /* Non-default settings are used: eps large enough to matter, other betas. */
  c.beta1 = 0.8, c.beta2 = 0.99, c.eps = 1e-1;
  run_case("adam b1=0.8 b2=0.99 eps=0.1", &c, 0.1f, w);

  c = dt_optim_defaults(DT_OPT_RMSPROP);
  run_case("rmsprop", &c, 0.1f, w);
  c.rho = 0.5, c.eps = 1e-1;
  run_case("rmsprop rho=0.5 eps=0.1", &c, 0.1f, w);

  c = dt_optim_defaults(DT_OPT_ADADELTA);
  CHECK_NEAR(c.rho, 0.95, 0);
  run_case("adadelta", &c, 1.0f, w);
  /* python3 (rho .95, eps 1e-7, lr 1): the first step is
   * sqrt(1e-7) / sqrt(0.05 * 0.01 + 1e-7) * 0.1 = 0.0014140721622. */
  {
    dt_optim_t o;
    float w1[3];
    memcpy(w1, w_init, sizeof w1);
    CHECK_INT_EQ(dt_optim_init(&o, &c, 3, NULL), 0);
    dt_optim_begin_step(&o);
    dt_optim_update(&o, w1, grads[0], 0, 3, 1.0f, NULL, 0);
    CHECK_NEAR(w1[0], 0.5 - 0.0014140721622, 1e-6);
    dt_optim_free(&o);
  }
}

static void test_defaults(void) {
  dt_optim_config_t c = dt_optim_defaults(DT_OPT_ADAM);
  CHECK_NEAR(c.beta1, 0.9, 0);
  CHECK_NEAR(c.beta2, 0.999, 0);
  CHECK_NEAR(c.eps, 1e-7, 0);
  CHECK_NEAR(c.weight_decay, 0.0, 0);
  CHECK_NEAR(dt_optim_defaults(DT_OPT_RMSPROP).rho, 0.9, 0);
  CHECK_NEAR(dt_optim_defaults(DT_OPT_SGD).momentum, 0.0, 0);

  /* Moment buffers: plain sgd 0, sgd momentum 1, rmsprop 1, adam and adadelta 2. */
  static const struct {
    dt_optim_kind kind;
    double momentum;
    int moments;
  } cases[] = {{DT_OPT_SGD, 0.0, 0},
               {DT_OPT_SGD, 0.9, 1},
               {DT_OPT_RMSPROP, 0, 1},
               {DT_OPT_ADAM, 0.0, 2},
               {DT_OPT_ADADELTA, 0.0, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dt_optim_config_t cc = dt_optim_defaults(cases[i].kind);
    cc.momentum = cases[i].momentum;
    dt_optim_t o;
    CHECK_INT_EQ(dt_optim_init(&o, &cc, 5, NULL), 0);
    CHECK_INT_EQ(dt_optim_num_moments(&o), cases[i].moments);
    CHECK((o.moment1 != NULL) == (cases[i].moments >= 1));
    CHECK((o.moment2 != NULL) == (cases[i].moments >= 2));
    CHECK_INT_EQ(o.step, 0);
    CHECK_INT_EQ(o.n, 5);
    dt_optim_free(&o);
  }
}

/* Weight decay over two tensors in one 4-element vector: [0,2) a kernel (decay),
 * [2,4) a bias (no decay). */
static void test_weight_decay(void) {
  dt_param_info_t tensors[2];
  memset(tensors, 0, sizeof tensors);
  snprintf(tensors[0].name, sizeof tensors[0].name, "dense_1.kernel");
  tensors[0].offset = 0, tensors[0].count = 2, tensors[0].decay = true;
  snprintf(tensors[1].name, sizeof tensors[1].name, "dense_1.bias");
  tensors[1].offset = 2, tensors[1].count = 2, tensors[1].decay = false;

  static const float w0[4] = {1.0f, -2.0f, 1.0f, -2.0f};
  static const float g[NSTEPS][4] = {
      {0.1f, 0.2f, 0.1f, 0.2f}, {-0.3f, 0.1f, -0.3f, 0.1f}, {0.05f, -0.4f, 0.05f, -0.4f}};
  dt_optim_config_t cfgs[3] = {dt_optim_defaults(DT_OPT_SGD), dt_optim_defaults(DT_OPT_SGD),
                               dt_optim_defaults(DT_OPT_ADAM)};
  cfgs[0].weight_decay = 0.1;
  cfgs[1].weight_decay = 0.05, cfgs[1].momentum = 0.9;
  cfgs[2].weight_decay = 0.5;
  const char *names[3] = {"sgd wd=0.1", "sgd momentum wd=0.05", "adam wd=0.5"};
  for (int k = 0; k < 3; k++) {
    dt_optim_t o;
    CHECK_INT_EQ(dt_optim_init(&o, &cfgs[k], 4, NULL), 0);
    float w[4];
    memcpy(w, w0, sizeof w);
    ref_state_t ref[4];
    for (int i = 0; i < 4; i++) ref[i] = (ref_state_t){(double)w0[i], 0.0, 0.0};
    for (int t = 1; t <= NSTEPS; t++) {
      dt_optim_begin_step(&o);
      dt_optim_update(&o, w, g[t - 1], 0, 4, 0.1f, tensors, 2);
      for (int i = 0; i < 4; i++) {
        ref_step(&cfgs[k], &ref[i], g[t - 1][i], 0.1, tensors[i / 2].decay, t);
        check_w(names[k], t, i, w[i], ref[i].w);
      }
    }
    /* The bias elements saw the same gradients and start values as the kernel ones but
     * no decay, so they must have moved differently. */
    CHECK(w[0] != w[2] && w[1] != w[3]);
    dt_optim_free(&o);
  }
  /* Plain SGD, by hand for the first step: kernel w -= 0.1 * (g + 0.1 w), bias w -= 0.1 g. */
  {
    dt_optim_t o;
    float w[4];
    memcpy(w, w0, sizeof w);
    CHECK_INT_EQ(dt_optim_init(&o, &cfgs[0], 4, NULL), 0);
    dt_optim_begin_step(&o);
    dt_optim_update(&o, w, g[0], 0, 4, 0.1f, tensors, 2);
    CHECK_NEAR(w[0], 1.0 - 0.1 * (0.1 + 0.1 * 1.0), 1e-7);
    CHECK_NEAR(w[1], -2.0 - 0.1 * (0.2 + 0.1 * -2.0), 1e-7);
    CHECK_NEAR(w[2], 1.0 - 0.1 * 0.1, 1e-7);
    CHECK_NEAR(w[3], -2.0 - 0.1 * 0.2, 1e-7);
    dt_optim_free(&o);
  }
}

/* Ranges: an update of [begin, end) touches nothing outside it, and [0, n) in two calls
 * equals one call bit for bit (what a parameter server shard and a bucketed all-reduce
 * rely on), including ranges that split a tensor under weight decay. */
static void test_ranges(void) {
  enum { N = 10 };
  dt_param_info_t tensors[3];
  memset(tensors, 0, sizeof tensors);
  tensors[0] = (dt_param_info_t){.offset = 0, .count = 3, .decay = true};
  tensors[1] = (dt_param_info_t){.offset = 3, .count = 3, .decay = false};
  tensors[2] = (dt_param_info_t){.offset = 6, .count = 4, .decay = true};
  float w0[N], g[N];
  for (int i = 0; i < N; i++) {
    w0[i] = 0.3f * (float)(i + 1) - 1.0f;
    g[i] = 0.07f * (float)((i * 7) % 5) - 0.11f;
  }
  const dt_optim_kind kinds[4] = {DT_OPT_SGD, DT_OPT_ADAM, DT_OPT_RMSPROP, DT_OPT_ADADELTA};
  /* Each kind with weight decay (the per-tensor path) and without (no tensors given). */
  for (int k = 0; k < 8; k++) {
    dt_optim_config_t c = dt_optim_defaults(kinds[k % 4]);
    c.weight_decay = k < 4 ? 0.01 : 0.0;
    const dt_param_info_t *tl = k < 4 ? tensors : NULL;
    const int nt = k < 4 ? 3 : 0;
    if (kinds[k % 4] == DT_OPT_SGD) c.momentum = 0.9, c.nesterov = true;

    /* Sub-range [3, 7): the rest of the parameters and moments stay as they were. */
    dt_optim_t o;
    CHECK_INT_EQ(dt_optim_init(&o, &c, N, NULL), 0);
    float w[N];
    memcpy(w, w0, sizeof w);
    for (int t = 0; t < NSTEPS; t++) {
      dt_optim_begin_step(&o);
      dt_optim_update(&o, w, g, 3, 7, 0.1f, tl, nt);
    }
    int outside_changed = 0, inside_unchanged = 0;
    for (int i = 0; i < N; i++) {
      bool in = i >= 3 && i < 7;
      bool same = memcmp(&w[i], &w0[i], sizeof(float)) == 0;
      if (!in) {
        outside_changed += !same;
        outside_changed += o.moment1 && o.moment1[i] != 0.0f;
        outside_changed += o.moment2 && o.moment2[i] != 0.0f;
      } else {
        inside_unchanged += same;
      }
    }
    CHECK_INT_EQ(outside_changed, 0);
    CHECK_INT_EQ(inside_unchanged, 0);
    dt_optim_free(&o);

    /* [0, N) in one call against [0, 4) + [4, N) and against [0, 1) + [1, 8) + [8, N). */
    static const size_t cuts[3][4] = {{0, N, N, N}, {0, 4, N, N}, {0, 1, 8, N}};
    float wr[3][N];
    dt_optim_t os[3];
    for (int s = 0; s < 3; s++) {
      CHECK_INT_EQ(dt_optim_init(&os[s], &c, N, NULL), 0);
      memcpy(wr[s], w0, sizeof w0);
      for (int t = 0; t < NSTEPS; t++) {
        dt_optim_begin_step(&os[s]);
        for (int r = 0; r < 3; r++)
          if (cuts[s][r] < cuts[s][r + 1])
            dt_optim_update(&os[s], wr[s], g, cuts[s][r], cuts[s][r + 1], 0.1f, tl, nt);
      }
    }
    for (int s = 1; s < 3; s++) {
      CHECK(memcmp(wr[0], wr[s], sizeof wr[0]) == 0);
      if (os[0].moment1) CHECK(memcmp(os[0].moment1, os[s].moment1, N * sizeof(float)) == 0);
      if (os[0].moment2) CHECK(memcmp(os[0].moment2, os[s].moment2, N * sizeof(float)) == 0);
    }
    /* And the one-call result is the reference's. */
    ref_state_t ref[N];
    for (int i = 0; i < N; i++) ref[i] = (ref_state_t){(double)w0[i], 0.0, 0.0};
    for (int t = 1; t <= NSTEPS; t++)
      for (int i = 0; i < N; i++)
        ref_step(&c, &ref[i], g[i], 0.1, tensors[i < 3 ? 0 : i < 6 ? 1 : 2].decay, t);
    for (int i = 0; i < N; i++)
      check_w(dt_optim_names[kinds[k % 4]], NSTEPS, i, wr[0][i], ref[i].w);
    for (int s = 0; s < 3; s++) dt_optim_free(&os[s]);
  }
}

/* ---- [optimizer] from a config ---- */

static dt_config_t *load(const char *text) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  int rc = dt_config_load_string(cfg, text, "test", &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "  unexpected error: %s\n", err.msg);
  return cfg;
}

static void test_config_read(void) {
  dt_error_t err = {0};
  dt_optim_config_t c;

  /* A key of another kind stays unread, so the unused-key check names it. */
  dt_config_t *cfg = load("[optimizer]\ntype = adam\nmomentum = 0.9\nbeta2 = 0.99\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), 0);
  CHECK_INT_EQ(c.kind, DT_OPT_ADAM);
  CHECK_NEAR(c.beta1, 0.9, 0);
  CHECK_NEAR(c.beta2, 0.99, 0);
  CHECK_NEAR(c.momentum, 0.0, 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "test:3");
  CHECK_STR_CONTAINS(err.msg, "momentum");
  CHECK_STR_CONTAINS(err.msg, "[optimizer]");
  dt_config_free(cfg);

  /* sgd reads momentum and nesterov, and the shared keys. */
  cfg = load(
      "[optimizer]\ntype = sgd\nmomentum = 0.9\nnesterov = true\nweight_decay = 1e-4\n"
      "epsilon = 1e-8\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), 0);
  CHECK_INT_EQ(c.kind, DT_OPT_SGD);
  CHECK_NEAR(c.momentum, 0.9, 0);
  CHECK(c.nesterov);
  CHECK_NEAR(c.weight_decay, 1e-4, 0);
  CHECK_NEAR(c.eps, 1e-8, 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);

  /* rmsprop and adadelta read rho; their defaults differ. */
  cfg = load("[optimizer]\ntype = rmsprop\nrho = 0.8\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), 0);
  CHECK_INT_EQ(c.kind, DT_OPT_RMSPROP);
  CHECK_NEAR(c.rho, 0.8, 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);
  cfg = load("[optimizer]\ntype = adadelta\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), 0);
  CHECK_INT_EQ(c.kind, DT_OPT_ADADELTA);
  CHECK_NEAR(c.rho, 0.95, 0);
  dt_config_free(cfg);

  /* No [optimizer] at all: plain sgd. */
  cfg = load("[train]\nlr = 0.1\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), 0);
  CHECK_INT_EQ(c.kind, DT_OPT_SGD);
  CHECK_NEAR(c.momentum, 0.0, 0);
  dt_config_free(cfg);

  /* Bad values name the key and the location. */
  cfg = load("[optimizer]\ntype = adamw\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "test:2");
  CHECK_STR_CONTAINS(err.msg, "adamw");
  CHECK_STR_CONTAINS(err.msg, "rmsprop");
  dt_config_free(cfg);
  cfg = load("[optimizer]\ntype = sgd\nmomentum = 1.5\n");
  CHECK_INT_EQ(dt_optim_config_read(cfg, &c, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "test:3");
  CHECK_STR_CONTAINS(err.msg, "momentum");
  dt_config_free(cfg);
}

/* ---- schedules ---- */

static void test_schedules(void) {
  const double base = 0.1, min_lr = 0.01;
  dt_schedule_t s = {
      .kind = DT_SCHED_CONSTANT, .base_lr = base, .steps_per_epoch = 10, .total_steps = 100};
  CHECK_NEAR(dt_schedule_lr(&s, 0), base, 0);
  CHECK_NEAR(dt_schedule_lr(&s, 99), base, 0);
  CHECK_NEAR(dt_schedule_lr(&s, 100000), base, 0);

  /* Step: gamma 0.5 every 2 epochs of 10 steps: halves at steps 20, 40, 60... */
  dt_error_t err = {0};
  dt_config_t *cfg = load("[schedule]\ntype = step\ngamma = 0.5\nstep_epochs = 2\n");
  CHECK_INT_EQ(dt_schedule_read(cfg, base, 10, 1000, &s, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);
  CHECK_INT_EQ(s.kind, DT_SCHED_STEP);
  CHECK_NEAR(dt_schedule_lr(&s, 0), base, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 19), base, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 20), base * 0.5, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 39), base * 0.5, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 40), base * 0.25, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 65), base * 0.125, 1e-15);

  /* Cosine over 100 steps: base at the start, the midpoint halfway, min at the end
   * (and after it). */
  s = (dt_schedule_t){.kind = DT_SCHED_COSINE,
                      .base_lr = base,
                      .min_lr = min_lr,
                      .steps_per_epoch = 10,
                      .total_steps = 100};
  CHECK_NEAR(dt_schedule_lr(&s, 0), base, 1e-12);
  CHECK_NEAR(dt_schedule_lr(&s, 50), (base + min_lr) / 2, 1e-12);
  CHECK_NEAR(dt_schedule_lr(&s, 100), min_lr, 1e-12);
  CHECK_NEAR(dt_schedule_lr(&s, 150), min_lr, 1e-12);
  /* A quarter of the way: min + (base - min) (1 + cos(pi/4)) / 2 = 0.08681980515. */
  CHECK_NEAR(dt_schedule_lr(&s, 25), 0.08681980515, 1e-10);
  /* Monotone non-increasing. */
  bool mono = true;
  for (long t = 1; t <= 100; t++) mono &= dt_schedule_lr(&s, t) <= dt_schedule_lr(&s, t - 1);
  CHECK(mono);

  /* Warmup: a linear ramp base/5, 2 base/5, ..., base over 5 steps, then the schedule. */
  s = (dt_schedule_t){.kind = DT_SCHED_CONSTANT,
                      .base_lr = base,
                      .warmup_steps = 5,
                      .steps_per_epoch = 10,
                      .total_steps = 100};
  for (long t = 0; t < 5; t++) CHECK_NEAR(dt_schedule_lr(&s, t), base * (t + 1) / 5.0, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 5), base, 0);
  CHECK_NEAR(dt_schedule_lr(&s, 50), base, 0);

  /* Warmup then cosine, read from a config: the cosine runs over the steps after the
   * warmup, so it starts at base right after the ramp and ends at min_lr. */
  cfg = load("[schedule]\ntype = cosine\nmin_lr = 0.01\nwarmup_steps = 10\n");
  CHECK_INT_EQ(dt_schedule_read(cfg, base, 10, 110, &s, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);
  CHECK_INT_EQ(s.kind, DT_SCHED_COSINE);
  CHECK_INT_EQ(s.warmup_steps, 10);
  CHECK_NEAR(dt_schedule_lr(&s, 0), base / 10, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 4), base * 5 / 10, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 9), base, 1e-15);
  CHECK_NEAR(dt_schedule_lr(&s, 10), base, 1e-12);
  CHECK_NEAR(dt_schedule_lr(&s, 60), (base + min_lr) / 2, 1e-12);
  CHECK_NEAR(dt_schedule_lr(&s, 110), min_lr, 1e-12);

  /* No [schedule]: constant. A key of another kind is left unread. */
  cfg = load("[train]\nlr = 0.1\n");
  CHECK_INT_EQ(dt_schedule_read(cfg, base, 10, 100, &s, &err), 0);
  CHECK_INT_EQ(s.kind, DT_SCHED_CONSTANT);
  CHECK_INT_EQ(s.warmup_steps, 0);
  dt_config_free(cfg);
  cfg = load("[schedule]\ntype = constant\ngamma = 0.5\n");
  CHECK_INT_EQ(dt_schedule_read(cfg, base, 10, 100, &s, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "gamma");
  CHECK_STR_CONTAINS(err.msg, "test:3");
  dt_config_free(cfg);
  cfg = load("[schedule]\ntype = linear\n");
  CHECK_INT_EQ(dt_schedule_read(cfg, base, 10, 100, &s, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "linear");
  CHECK_STR_CONTAINS(err.msg, "cosine");
  dt_config_free(cfg);
}

int main(void) {
  test_rules();
  test_defaults();
  test_weight_decay();
  test_ranges();
  test_config_read();
  test_schedules();
  return test_summary("test_optim");
}
