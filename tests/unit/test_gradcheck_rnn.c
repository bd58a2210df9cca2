/* Gradient checks of the sequence layers (embedding, simple_rnn, lstm, gru,
 * bidirectional, dense with time_distributed) against central finite differences; the
 * tolerance and the comparison are gradcheck.h's.
 *
 * Layers whose output is a flat vector are checked as the one layer of a model
 * (gradcheck_layer_shape). A model's loss needs a flat output, so layers with
 * (T, units) outputs (return_sequences, embedding, time_distributed) are checked
 * standalone here: built from a config section, parameters in a buffer of our own,
 * forward and backward called directly. Whole models check that the layers chain:
 * every sequence layer's dx feeds the gradient of the layer before it. The checks run
 * over several time steps (T = 3..5), plus single-step edge cases. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

static dt_shape_t seq(int T, int F) { return (dt_shape_t){2, {T, F, 1, 1}}; }

/* ---- standalone layers with any output shape ---- */

typedef struct {
  dt_config_t *cfg;
  dt_layer_t l;
  float *params, *grads, *scratch; /* (total), (total), scratch_floats(batch) */
  size_t total;
} solo_t;

static bool solo_build(solo_t *s, const char *section_text, dt_shape_t in, int batch) {
  memset(s, 0, sizeof *s);
  dt_error_t err = {0};
  char text[1024];
  snprintf(text, sizeof text, "[layer.1]\n%s", section_text);
  s->cfg = dt_config_new();
  const char *type = NULL;
  int rc = dt_config_load_string(s->cfg, text, "test", &err);
  if (!rc) rc = dt_config_get_string(s->cfg, "layer.1", "type", "", &type, &err);
  const dt_layer_ops_t *ops = rc ? NULL : dt_layer_find(type);
  CHECK(ops != NULL);
  if (!ops) return false;
  s->l.ops = ops;
  s->l.section = "layer.1";
  s->l.in_shape = in;
  snprintf(s->l.name, sizeof s->l.name, "%s_1", type);
  rc = ops->build(&s->l, s->cfg, "layer.1", &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "  building\n%s\nfailed: %s\n", text, err.msg);
    return false;
  }
  for (int p = 0; p < s->l.nparams; p++) {
    s->l.param_decl[p].offset = s->total;
    s->total += s->l.param_decl[p].count;
  }
  s->params = calloc(s->total + 1, sizeof(float));
  s->grads = calloc(s->total + 1, sizeof(float));
  for (int p = 0; p < s->l.nparams; p++) {
    s->l.w[p] = s->params + s->l.param_decl[p].offset;
    s->l.g[p] = s->grads + s->l.param_decl[p].offset;
  }
  size_t ns = ops->scratch_floats ? ops->scratch_floats(&s->l, batch) : 0;
  s->scratch = calloc(ns + 1, sizeof(float));
  s->l.scratch = s->scratch;
  return s->params && s->grads && s->scratch;
}

static void solo_free(solo_t *s) {
  free(s->l.priv);
  free(s->params);
  free(s->grads);
  free(s->scratch);
  dt_config_free(s->cfg);
}

/* sum(c * y(x)) in double. */
static double solo_functional(solo_t *s, int batch, const float *x, float *y, const float *c,
                              size_t nout) {
  dt_fwd_ctx_t ctx = {.training = false, .rng = NULL};
  s->l.ops->forward(&s->l, &ctx, batch, x, y);
  double sum = 0.0;
  for (size_t i = 0; i < nout; i++) sum += (double)c[i] * y[i];
  return sum;
}

/* Checks dx (unless int_inputs > 0: token ids in [0, int_inputs)) and every parameter
 * gradient of the layer `section_text` for inputs of shape `in`. */
static void solo_check(const char *what, const char *section_text, dt_shape_t in, int batch,
                       int int_inputs, uint64_t seed, int line) {
  solo_t s;
  if (!solo_build(&s, section_text, in, batch)) {
    solo_free(&s);
    return;
  }
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  const size_t nin = (size_t)batch * dt_shape_size(&in),
               nout = (size_t)batch * dt_shape_size(&s.l.out_shape);
  float *x = malloc(sizeof(float) * nin), *dx = malloc(sizeof(float) * nin);
  float *y = malloc(sizeof(float) * nout), *c = malloc(sizeof(float) * nout);
  float *pg = malloc(sizeof(float) * (s.total + 1));
  for (size_t i = 0; i < s.total; i++) s.params[i] = uniform(&rng, -0.6f, 0.6f);
  for (size_t i = 0; i < nin; i++)
    x[i] = int_inputs > 0 ? (float)dt_rng_below(&rng, (uint64_t)int_inputs)
                          : uniform(&rng, -1.0f, 1.0f);
  for (size_t i = 0; i < nout; i++) c[i] = uniform(&rng, -1.0f, 1.0f);

  solo_functional(&s, batch, x, y, c, nout);
  double f0 = 0.0;
  for (size_t i = 0; i < nout; i++) f0 += fabs((double)c[i] * y[i]);
  s.l.ops->backward(&s.l, batch, x, y, c, dx);
  memcpy(pg, s.grads, sizeof(float) * s.total);

  char label[256], sh[64];
  snprintf(label, sizeof label, "%.160s (batch %d, in %s)", what, batch,
           dt_shape_str(&in, sh, sizeof sh));
  for (size_t k = 0; k < nin && int_inputs <= 0; k++) {
    const float x0 = x[k];
    x[k] = x0 + EPS;
    const float hi = x[k];
    const double lp = solo_functional(&s, batch, x, y, c, nout);
    x[k] = x0 - EPS;
    const float lo = x[k];
    const double lm = solo_functional(&s, batch, x, y, c, nout);
    x[k] = x0;
    check_grad(label, "dx", k, dx[k], (lp - lm) / ((double)hi - lo), f0, line);
  }
  for (int p = 0; p < s.l.nparams; p++) {
    const dt_param_info_t *pi = &s.l.param_decl[p];
    for (size_t i = 0; i < pi->count; i++) {
      float *w = &s.params[pi->offset + i];
      const float w0 = *w;
      *w = w0 + EPS;
      const float hi = *w;
      const double lp = solo_functional(&s, batch, x, y, c, nout);
      *w = w0 - EPS;
      const float lo = *w;
      const double lm = solo_functional(&s, batch, x, y, c, nout);
      *w = w0;
      check_grad(label, pi->name, i, pg[pi->offset + i], (lp - lm) / ((double)hi - lo), f0, line);
    }
  }
  free(x);
  free(dx);
  free(y);
  free(c);
  free(pg);
  solo_free(&s);
}

/* ---- the checks ---- */

static const char *const cells[] = {"simple_rnn", "lstm", "gru"};

/* Each cell with a flat output, as the one layer of a model (gradcheck.h's harness),
 * and with return_sequences standalone; T = 3, 4, 5 and F, units, batch varying. */
static void test_cells(void) {
  for (int k = 0; k < 3; k++) {
    for (int T = 3; T <= 5; T++) {
      const int F = 2 + T % 2, units = 2 + (T + k) % 2, batch = 2 + (T + k) % 2;
      char section[256], full[512], what[128];
      snprintf(section, sizeof section, "type = %s\nunits = %d\n", cells[k], units);
      snprintf(full, sizeof full, "[model]\nloss = mse\n[layer.1]\n%s", section);
      snprintf(what, sizeof what, "%s T=%d", cells[k], T);
      gradcheck_layer_shape(what, full, seq(T, F), batch, false, 0, 1000 + 10 * k + T, __LINE__);

      snprintf(section, sizeof section, "type = %s\nunits = %d\nreturn_sequences = true\n",
               cells[k], units);
      snprintf(what, sizeof what, "%s return_sequences T=%d", cells[k], T);
      solo_check(what, section, seq(T, F), batch, 0, 2000 + 10 * k + T, __LINE__);
    }
  }
  /* One time step (no recurrent term: the recurrent kernel's gradient is zero) and a
   * batch of one. */
  solo_check("lstm T=1", "type = lstm\nunits = 3\n", seq(1, 2), 2, 0, 2101, __LINE__);
  solo_check("gru T=1 return_sequences", "type = gru\nunits = 2\nreturn_sequences = true\n",
             seq(1, 3), 1, 0, 2102, __LINE__);
}

/* Bidirectional around each cell, concat and sum, with and without return_sequences. */
static void test_bidirectional(void) {
  static const char *const merges[] = {"concat", "sum"};
  for (int k = 0; k < 3; k++) {
    for (int m = 0; m < 2; m++) {
      for (int rs = 0; rs < 2; rs++) {
        const int T = 3 + (k + m + rs) % 3, F = 2 + m, units = 2 + rs, batch = 2 + k % 2;
        char section[256], what[128];
        snprintf(section, sizeof section,
                 "type = bidirectional\nlayer = %s\nunits = %d\nmerge_mode = %s\n"
                 "return_sequences = %s\n",
                 cells[k], units, merges[m], rs ? "true" : "false");
        snprintf(what, sizeof what, "bidirectional %s %s%s T=%d", cells[k], merges[m],
                 rs ? " return_sequences" : "", T);
        solo_check(what, section, seq(T, F), batch, 0, 3000 + 100 * k + 10 * m + rs, __LINE__);
      }
    }
  }
  /* The flat form also through the model harness. */
  gradcheck_layer_shape("bidirectional lstm concat (model)",
                        "[model]\nloss = mse\n[layer.1]\ntype = bidirectional\nlayer = lstm\n"
                        "units = 2\n",
                        seq(4, 3), 3, false, 0, 3500, __LINE__);
}

static void test_embedding_and_time_distributed(void) {
  /* Ids drawn from [0, 6) with input_dim 6, so rows repeat within a batch (their
   * gradients add up) and some rows are never used (zero gradient). */
  solo_check("embedding (T)", "type = embedding\ninput_dim = 6\noutput_dim = 3\n",
             dt_shape_1d(5), 3, 6, 4001, __LINE__);
  solo_check("embedding (T1, T2)", "type = embedding\ninput_dim = 4\noutput_dim = 2\n",
             seq(3, 2), 2, 4, 4002, __LINE__);
  for (int T = 3; T <= 5; T++) {
    char what[64];
    snprintf(what, sizeof what, "dense time_distributed T=%d", T);
    solo_check(what, "type = dense\nunits = 3\ntime_distributed = true\n", seq(T, 4), 2, 0,
               4010 + T, __LINE__);
  }
}

/* A whole model on random sizes: every parameter gradient after dt_model_backward. */
static void check_model(const char *what, const char *text, dt_shape_t in, int batch,
                        int int_inputs, uint64_t seed, int line) {
  net_t n;
  if (!net_build_shape(&n, text, in, batch)) {
    net_free(&n);
    return;
  }
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  n.fwd_seed = dt_rng_u64(&rng);
  net_init(&n, &rng);
  for (int i = 0; i < batch * n.in; i++)
    n.x[i] = int_inputs > 0 ? (float)dt_rng_below(&rng, (uint64_t)int_inputs)
                            : uniform(&rng, -1.0f, 1.0f);
  net_targets(&n, &rng);
  net_check_params(&n, what, line);
  net_free(&n);
}

static void test_models(void) {
  check_model("embedding-lstm-dense ce",
              "[model]\nloss = sparse_categorical_crossentropy\n"
              "[layer.1]\ntype = embedding\ninput_dim = 7\noutput_dim = 3\n"
              "[layer.2]\ntype = lstm\nunits = 4\n"
              "[layer.3]\ntype = dense\nunits = 3\n",
              dt_shape_1d(4), 3, 7, 5001, __LINE__);
  check_model("lstm(return_sequences)-gru-dense ce",
              "[model]\nloss = sparse_categorical_crossentropy\n"
              "[layer.1]\ntype = lstm\nunits = 3\nreturn_sequences = true\n"
              "[layer.2]\ntype = gru\nunits = 3\n"
              "[layer.3]\ntype = dense\nunits = 4\n",
              seq(4, 2), 2, 0, 5002, __LINE__);
  check_model("embedding-bidirectional gru-dense(time_distributed)-tanh-dense mse",
              "[model]\nloss = mse\n"
              "[layer.1]\ntype = embedding\ninput_dim = 5\noutput_dim = 2\n"
              "[layer.2]\ntype = bidirectional\nlayer = gru\nunits = 2\nreturn_sequences = true\n"
              "[layer.3]\ntype = dense\nunits = 3\ntime_distributed = true\nactivation = tanh\n"
              "[layer.4]\ntype = dense\nunits = 2\n",
              dt_shape_1d(3), 2, 5, 5003, __LINE__);
  check_model("simple_rnn-bidirectional lstm sum-dense bce",
              "[model]\nloss = binary_crossentropy\n"
              "[layer.1]\ntype = simple_rnn\nunits = 3\nreturn_sequences = true\n"
              "[layer.2]\ntype = bidirectional\nlayer = lstm\nunits = 2\nmerge_mode = sum\n"
              "[layer.3]\ntype = dense\nunits = 2\n",
              seq(5, 2), 3, 0, 5004, __LINE__);
}

int main(void) {
  test_cells();
  test_bidirectional();
  test_embedding_and_time_distributed();
  test_models();
  gradcheck_report("gradcheck_rnn");
  return test_summary("test_gradcheck_rnn");
}
