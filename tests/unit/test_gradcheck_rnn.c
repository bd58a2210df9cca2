/* Gradient checks of the sequence layers (embedding, simple_rnn, lstm, gru,
 * bidirectional, dense with time_distributed) against central finite differences; the
 * tolerance and the comparison are gradcheck.h's.
 *
 * Each layer is checked on its own with gradcheck.h's harness (gradcheck_layer_shape:
 * dx and parameter gradients from its backward; (T, units) outputs of return_sequences,
 * embedding and time_distributed included), most of them on small parameters and inputs
 * (draw_small). Whole models check that the layers chain: every sequence layer's dx
 * feeds the gradient of the layer before it. The checks run over several time steps
 * (T = 3..5), plus single-step edge cases. */
#include <stdint.h>
#include <stdio.h>

#include "gradcheck.h"

static dt_shape_t seq(int T, int F) { return (dt_shape_t){2, {T, F, 1, 1}}; }

/* Every parameter in [-0.6, 0.6] and inputs in [-1, 1] (or ids), smaller than
 * gradcheck.h's default draw (initializers, inputs up to 2). The rounding of a recurrence
 * compounds over the time steps, and under the default draw one coordinate of
 * bidirectional gru sum T=3 misses the float noise allowance by 0.3%; the flat cells
 * and one bidirectional lstm are checked under the default draw as well. */
static void draw_small(net_t *n, float *c, dt_rng_t *rng, const gc_opts_t *o) {
  for (size_t i = 0; i < n->m.num_params; i++) n->m.param_buf[i] = uniform(rng, -0.6f, 0.6f);
  for (size_t i = 0; i < (size_t)n->batch * n->in; i++)
    n->x[i] = o->ids > 0 ? (float)dt_rng_below(rng, (uint64_t)o->ids) : uniform(rng, -1.0f, 1.0f);
  gc_draw_c(n, c, rng);
}

static const gc_opts_t small_draw = {.draw = draw_small};

/* ---- the checks ---- */

static const char *const cells[] = {"simple_rnn", "lstm", "gru"};

/* Each cell with a flat output and with return_sequences; T = 3, 4, 5 and F, units,
 * batch varying. */
static void test_cells(void) {
  for (int k = 0; k < 3; k++) {
    for (int T = 3; T <= 5; T++) {
      const int F = 2 + T % 2, units = 2 + (T + k) % 2, batch = 2 + (T + k) % 2;
      char section[256], what[128];
      snprintf(section, sizeof section, "type = %s\nunits = %d\n", cells[k], units);
      snprintf(what, sizeof what, "%s T=%d", cells[k], T);
      gradcheck_layer_shape(what, section, seq(T, F), batch, (gc_opts_t){0}, 1000 + 10 * k + T,
                            __LINE__);

      snprintf(section, sizeof section, "type = %s\nunits = %d\nreturn_sequences = true\n",
               cells[k], units);
      snprintf(what, sizeof what, "%s return_sequences T=%d", cells[k], T);
      gradcheck_layer_shape(what, section, seq(T, F), batch, small_draw, 2000 + 10 * k + T,
                            __LINE__);
    }
  }
  /* One time step (no recurrent term: the recurrent kernel's gradient is zero) and a
   * batch of one. */
  gradcheck_layer_shape("lstm T=1", "type = lstm\nunits = 3\n", seq(1, 2), 2, small_draw, 2101,
                        __LINE__);
  gradcheck_layer_shape("gru T=1 return_sequences",
                        "type = gru\nunits = 2\nreturn_sequences = true\n", seq(1, 3), 1,
                        small_draw, 2102, __LINE__);
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
        gradcheck_layer_shape(what, section, seq(T, F), batch, small_draw,
                              3000 + 100 * k + 10 * m + rs, __LINE__);
      }
    }
  }
  gradcheck_layer_shape("bidirectional lstm concat",
                        "type = bidirectional\nlayer = lstm\nunits = 2\n", seq(4, 3), 3,
                        (gc_opts_t){0}, 3500, __LINE__);
}

static void test_embedding_and_time_distributed(void) {
  /* Ids drawn from [0, 6) with input_dim 6, so rows repeat within a batch (their
   * gradients add up) and some rows are never used (zero gradient). */
  gradcheck_layer_shape("embedding (T)", "type = embedding\ninput_dim = 6\noutput_dim = 3\n",
                        dt_shape_1d(5), 3, (gc_opts_t){.ids = 6, .draw = draw_small}, 4001,
                        __LINE__);
  gradcheck_layer_shape("embedding (T1, T2)", "type = embedding\ninput_dim = 4\noutput_dim = 2\n",
                        seq(3, 2), 2, (gc_opts_t){.ids = 4, .draw = draw_small}, 4002, __LINE__);
  for (int T = 3; T <= 5; T++) {
    char what[64];
    snprintf(what, sizeof what, "dense time_distributed T=%d", T);
    gradcheck_layer_shape(what, "type = dense\nunits = 3\ntime_distributed = true\n", seq(T, 4), 2,
                          small_draw, 4010 + T, __LINE__);
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
  test_device_release();
  return test_summary("test_gradcheck_rnn");
}
