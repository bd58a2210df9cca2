/* Tests for building a model from its config: the flat parameter layout, names,
 * `activation = ...` layers, the fused final softmax/sigmoid, initializers, one
 * forward/backward pass against hand-computed numbers, the per-layer gradient-ready
 * callback and its events, the host views of the flat buffers, and the message of every
 * build error. */
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

/* Builds text (origin "test") for inputs of shape in; the build must succeed. The
 * config is returned through cfg_out because layer sections point into it. */
static bool build(dt_model_t *m, dt_config_t **cfg_out, const char *text, dt_shape_t in) {
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  memset(m, 0, sizeof *m); /* so that dt_model_free is safe whatever fails */
  *cfg_out = cfg;
  int rc = dt_config_load_string(cfg, text, "test", &err);
  if (!rc) rc = dt_model_build(m, test_device(), cfg, in, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "  building\n%s\nfailed: %s\n", text, err.msg);
  return rc == 0;
}

/* The build of text must fail with code and a message containing each needle. */
static void check_build_error(const char *text, dt_shape_t in, int code, const char *const *needles,
                              int line) {
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  dt_model_t m;
  memset(&m, 0, sizeof m);
  int rc = dt_config_load_string(cfg, text, "test", &err);
  CHECK_INT_EQ(rc, 0);
  if (!rc) rc = dt_model_build(&m, test_device(), cfg, in, &err);
  if (rc != code) fprintf(stderr, "  (case at line %d: %s)\n", line, err.msg);
  CHECK_INT_EQ(rc, code);
  CHECK_INT_EQ(err.code, code);
  for (int i = 0; needles[i]; i++) {
    if (!strstr(err.msg, needles[i])) fprintf(stderr, "  (case at line %d)\n", line);
    CHECK_STR_CONTAINS(err.msg, needles[i]);
  }
  /* A failed build leaves the model safe to free (and leak-free once freed). */
  dt_model_free(&m);
  dt_config_free(cfg);
}

static const char layout_cfg[] =
    "[model]\n"
    "loss = mse\n"
    "[layer.1]\n"
    "type = dense\n"
    "units = 4\n"
    "activation = relu\n"
    "[layer.2]\n"
    "type = dense\n"
    "units = 3\n"
    "kernel_initializer = he_normal\n"
    "activation = tanh\n"
    "[layer.3]\n"
    "type = dropout\n"
    "rate = 0.2\n"
    "[layer.4]\n"
    "type = dense\n"
    "units = 2\n";

static void test_layout(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (!build(&m, &cfg, layout_cfg, dt_shape_1d(5))) goto out;

  /* activation = ... appends a layer after the one that names it. */
  static const char *const types[] = {"dense", "relu", "dense", "tanh", "dropout", "dense"};
  static const char *const names[] = {"dense_1", "relu_1",    "dense_2",
                                      "tanh_1",  "dropout_1", "dense_3"};
  static const char *const sections[] = {"layer.1", "layer.1", "layer.2",
                                         "layer.2", "layer.3", "layer.4"};
  static const int outs[] = {4, 4, 3, 3, 3, 2};
  CHECK_INT_EQ(m.nlayers, 6);
  CHECK_INT_EQ(m.nrun, 6);
  CHECK_INT_EQ(m.loss, DT_LOSS_MSE);
  for (int i = 0; i < m.nlayers && i < 6; i++) {
    CHECK_STR_CONTAINS(m.layers[i].ops->type, types[i]);
    CHECK(strcmp(m.layers[i].ops->type, types[i]) == 0);
    CHECK(strcmp(m.layers[i].name, names[i]) == 0);
    CHECK(m.layers[i].section && strcmp(m.layers[i].section, sections[i]) == 0);
    CHECK_INT_EQ(m.layers[i].out_shape.ndim, 1);
    CHECK_INT_EQ(m.layers[i].out_shape.dims[0], outs[i]);
    /* Each layer's input is the previous layer's output. */
    CHECK_INT_EQ(dt_shape_size(&m.layers[i].in_shape), i ? (size_t)outs[i - 1] : 5u);
  }
  CHECK_INT_EQ(dt_model_input_size(&m), 5);
  CHECK_INT_EQ(dt_model_output_size(&m), 2);

  /* Flat layout: tensors in layer order, contiguous, kernel (in, units) then bias. */
  static const char *const pnames[] = {"dense_1.kernel", "dense_1.bias",   "dense_2.kernel",
                                       "dense_2.bias",   "dense_3.kernel", "dense_3.bias"};
  static const size_t counts[] = {20, 4, 12, 3, 6, 2}, offsets[] = {0, 20, 24, 36, 39, 45};
  CHECK_INT_EQ(m.nparams, 6);
  CHECK_INT_EQ(m.num_params, 47);
  size_t sum = 0;
  for (int p = 0; p < m.nparams && p < 6; p++) {
    const dt_param_info_t *pi = &m.params[p];
    CHECK(strcmp(pi->name, pnames[p]) == 0);
    CHECK_INT_EQ(pi->count, counts[p]);
    CHECK_INT_EQ(pi->offset, offsets[p]);
    CHECK_INT_EQ(pi->offset, sum);
    CHECK_INT_EQ(pi->count, dt_shape_size(&pi->shape));
    CHECK(pi->decay == (p % 2 == 0)); /* kernels decay, biases do not */
    sum += pi->count;
  }
  CHECK_INT_EQ(sum, m.num_params);
  CHECK_INT_EQ(m.params[0].shape.ndim, 2);
  CHECK_INT_EQ(m.params[0].shape.dims[0], 5);
  CHECK_INT_EQ(m.params[0].shape.dims[1], 4);
  CHECK_INT_EQ(m.params[2].init, DT_INIT_HE_NORMAL);
  CHECK_INT_EQ(m.params[0].init, DT_INIT_GLOROT_UNIFORM); /* the dense default */
  CHECK_INT_EQ(m.params[1].init, DT_INIT_ZEROS);

  /* The layers' views point at their tensors in the flat buffers. */
  int p = 0, bad_views = 0;
  for (int i = 0; i < m.nlayers; i++) {
    for (int k = 0; k < m.layers[i].nparams; k++, p++) {
      bad_views += m.layers[i].w[k] != m.param_buf + m.params[p].offset;
      bad_views += m.layers[i].g[k] != m.grad_buf + m.params[p].offset;
      bad_views += m.layers[i].param_decl[k].offset != m.params[p].offset;
    }
  }
  CHECK_INT_EQ(p, 6);
  CHECK_INT_EQ(bad_views, 0);

  /* Every key of the config was read. */
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);

  /* The summary lists the layers and the total. */
  char buf[2048];
  size_t need = dt_model_summary(&m, NULL, 0);
  CHECK(need > 0 && need < sizeof buf);
  CHECK_INT_EQ(dt_model_summary(&m, buf, sizeof buf), need);
  CHECK_STR_CONTAINS(buf, "dense_3");
  CHECK_STR_CONTAINS(buf, "dropout_1");
  CHECK_STR_CONTAINS(buf, "Total params: 47");
out:
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* [layer.N] sections run in the order of N, not of the file, and a model may omit
 * [model] (the loss defaults to sparse categorical cross-entropy). */
static void test_section_order(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (build(&m, &cfg,
            "[layer.10]\ntype = dense\nunits = 2\n[layer.2]\ntype = dense\nunits = 7\n"
            "activation = leaky_relu\nalpha = 0.2\n",
            dt_shape_1d(3))) {
    CHECK_INT_EQ(m.loss, DT_LOSS_SOFTMAX_CE);
    CHECK_INT_EQ(m.nlayers, 3);
    CHECK_INT_EQ(m.layers[0].out_shape.dims[0], 7);
    CHECK(strcmp(m.layers[1].ops->type, "leaky_relu") == 0);
    CHECK_INT_EQ(m.layers[2].out_shape.dims[0], 2);
    CHECK_INT_EQ(m.num_params, 3 * 7 + 7 + 7 * 2 + 2);
    dt_error_t err = {0};
    CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0); /* alpha was read by leaky_relu */
  }
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* A final softmax is fused into sparse CE, a final sigmoid into BCE; nothing else is. */
static void test_fusion(void) {
  static const struct {
    const char *loss, *last; /* last: the layer after dense_1, written as activation or section */
    bool as_activation, fused;
  } cases[] = {
      {"sparse_categorical_crossentropy", "softmax", true, true},
      {"sparse_categorical_crossentropy", "softmax", false, true},
      {"binary_crossentropy", "sigmoid", true, true},
      {"binary_crossentropy", "sigmoid", false, true},
      {"mse", "softmax", true, false},
      {"mae", "sigmoid", false, false},
      {"sparse_categorical_crossentropy", "sigmoid", true, false},
      {"binary_crossentropy", "softmax", true, false},
      {"sparse_categorical_crossentropy", "tanh", false, false},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char text[512];
    if (cases[c].as_activation)
      snprintf(text, sizeof text,
               "[model]\nloss = %s\n[layer.1]\ntype = dense\nunits = 3\nactivation = %s\n",
               cases[c].loss, cases[c].last);
    else
      snprintf(text, sizeof text,
               "[model]\nloss = %s\n[layer.1]\ntype = dense\nunits = 3\n[layer.2]\ntype = %s\n",
               cases[c].loss, cases[c].last);
    dt_model_t m;
    dt_config_t *cfg;
    if (build(&m, &cfg, text, dt_shape_1d(4))) {
      CHECK_INT_EQ(m.nlayers, 2);
      if (m.nrun != (cases[c].fused ? 1 : 2)) fprintf(stderr, "  (fusion case %zu)\n", c);
      CHECK_INT_EQ(m.nrun, cases[c].fused ? 1 : 2);
      CHECK_INT_EQ(dt_model_output_size(&m), 3);
      char buf[1024];
      dt_model_summary(&m, buf, sizeof buf);
      CHECK(cases[c].fused == (strstr(buf, "fused into the loss") != NULL));
      /* Forward returns the dense layer's logits when fused. */
      dt_error_t err = {0};
      CHECK_INT_EQ(dt_model_prepare(&m, 2, &err), 0);
      dt_rng_t rng;
      dt_rng_seed(&rng, 1);
      dt_model_init_params(&m, &rng, NULL);
      for (int i = 0; i < 8; i++) m.acts[0][i] = (float)i - 3.5f;
      const float *y = dt_model_forward(&m, 2, false, &rng);
      CHECK(y == m.acts[cases[c].fused ? 1 : 2]);
    }
    dt_model_free(&m);
    dt_config_free(cfg);
  }
}

/* One forward and backward pass of dense(2->2, relu) -> dense(2->1) with mse, by hand:
 * x = [1, 2], W1 = [[1, -1], [0.5, 2]] (in, units), b1 = [-3, 0.5]
 *   z = x W1 + b1 = [2 - 3, 3 + 0.5] = [-1, 3.5], h = relu(z) = [0, 3.5]
 * W2 = [[2], [1]], b2 = [0.25]: y = 0 * 2 + 3.5 + 0.25 = 3.75; target 3: loss 0.5625,
 * dL/dy = 2 (y - t) = 1.5
 *   dW2 = h^T 1.5 = [0, 5.25], db2 = 1.5, dh = 1.5 W2^T = [3, 1.5], dz = [0, 1.5]
 *   dW1 = x^T dz = [[0, 1.5], [0, 3]], db1 = [0, 1.5]. */
static void test_forward_backward_by_hand(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (!build(&m, &cfg,
             "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 2\nactivation = relu\n"
             "[layer.2]\ntype = dense\nunits = 1\n",
             dt_shape_1d(2)))
    goto out;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_model_prepare(&m, 4, &err), 0);
  CHECK_INT_EQ(m.num_params, 9);
  const float params[9] = {1, -1, 0.5f, 2, -3, 0.5f, 2, 1, 0.25f};
  memcpy(m.param_buf, params, sizeof params);
  m.acts[0][0] = 1, m.acts[0][1] = 2;
  dt_rng_t rng;
  dt_rng_seed(&rng, 3);
  const float *y = dt_model_forward(&m, 1, true, &rng);
  CHECK_NEAR(m.acts[1][0], -1.0, 0);
  CHECK_NEAR(m.acts[1][1], 3.5, 0);
  CHECK_NEAR(m.acts[2][0], 0.0, 0);
  CHECK_NEAR(y[0], 3.75, 0);
  const float target = 3.0f;
  CHECK_NEAR(dt_loss_compute(m.loss, y, 1, 1, NULL, &target, m.dout), 0.5625, 1e-12);
  CHECK_NEAR(m.dout[0], 1.5, 0);
  /* Stale values in grad_buf must be overwritten, not added to. */
  for (size_t i = 0; i < m.num_params; i++) m.grad_buf[i] = 100.0f;
  dt_model_backward(&m, 1);
  const float want[9] = {0, 1.5f, 0, 3, 0, 1.5f, 0, 5.25f, 1.5f};
  for (int i = 0; i < 9; i++) CHECK_NEAR(m.grad_buf[i], want[i], 1e-6);

  /* A batch of two samples averages: the same sample twice gives the same gradients. */
  m.acts[0][2] = 1, m.acts[0][3] = 2;
  y = dt_model_forward(&m, 2, false, &rng);
  const float targets[2] = {3.0f, 3.0f};
  CHECK_NEAR(dt_loss_compute(m.loss, y, 2, 1, NULL, targets, m.dout), 0.5625, 1e-12);
  dt_model_backward(&m, 2);
  for (int i = 0; i < 9; i++) CHECK_NEAR(m.grad_buf[i], want[i], 1e-6);

  /* prepare may be called again for another capacity. */
  CHECK_INT_EQ(dt_model_prepare(&m, 16, &err), 0);
  CHECK_INT_EQ(m.capacity, 16);
  m.acts[0][0] = 1, m.acts[0][1] = 2;
  y = dt_model_forward(&m, 1, false, &rng);
  CHECK_NEAR(y[0], 3.75, 0);
out:
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* on_grads_ready: once per layer with parameters, in reverse layer order, with the
 * exact range of that layer's tensors; together the ranges cover [0, num_params). */
typedef struct {
  int calls, complete;
  size_t begin[8], end[8];
} ready_log_t;

static void on_ready(void *ctx, size_t begin, size_t end, dt_device_event_t *ready) {
  ready_log_t *log = ctx;
  if (log->calls < 8) log->begin[log->calls] = begin, log->end[log->calls] = end;
  log->calls++;
  /* On the CPU the layer's work is done when its backward returns. */
  bool done = false;
  if (ready && dt_device_event_query(ready, &done, NULL) == 0 && done) log->complete++;
}

static void test_grads_ready(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (!build(&m, &cfg, layout_cfg, dt_shape_1d(5))) goto out;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_model_prepare(&m, 3, &err), 0);
  dt_rng_t rng;
  dt_rng_seed(&rng, 5);
  dt_model_init_params(&m, &rng, NULL);
  for (int i = 0; i < 15; i++) m.acts[0][i] = dt_rng_uniform(&rng);
  ready_log_t log = {0};
  m.on_grads_ready = on_ready;
  m.grads_ready_ctx = &log;
  const float *y = dt_model_forward(&m, 3, true, &rng);
  const float t[6] = {0};
  dt_loss_compute(m.loss, y, 3, 2, NULL, t, m.dout);
  dt_model_backward(&m, 3);
  CHECK_INT_EQ(log.calls, 3);
  CHECK_INT_EQ(log.complete, 3);
  static const size_t b[3] = {39, 24, 0}, e[3] = {47, 39, 24};
  for (int i = 0; i < 3 && i < log.calls; i++) {
    CHECK_INT_EQ(log.begin[i], b[i]);
    CHECK_INT_EQ(log.end[i], e[i]);
  }
out:
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* Initializers: he_normal has standard deviation sqrt(2 / fan_in), glorot_uniform lies
 * within sqrt(6 / (fan_in + fan_out)), biases start at zero; the same seed gives the
 * same parameters. Sample statistics over 20000 weights: the standard deviation is
 * within 3% (its relative standard error is 1/sqrt(2n) = 0.5%). */
static void test_init(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (!build(&m, &cfg,
             "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 100\n"
             "kernel_initializer = he_normal\nbias_initializer = ones\n[layer.2]\ntype = dense\n"
             "units = 50\n",
             dt_shape_1d(200)))
    goto out;
  dt_rng_t rng;
  dt_rng_seed(&rng, 42);
  dt_model_init_params(&m, &rng, NULL);
  const float *k1 = m.param_buf + m.params[0].offset, *b1 = m.param_buf + m.params[1].offset;
  const float *k2 = m.param_buf + m.params[2].offset, *b2 = m.param_buf + m.params[3].offset;
  double sum = 0, sq = 0;
  for (size_t i = 0; i < m.params[0].count; i++) sum += k1[i], sq += (double)k1[i] * k1[i];
  double n = (double)m.params[0].count, mean = sum / n, sd = sqrt(sq / n - mean * mean);
  CHECK_NEAR(mean, 0.0, 0.003);
  CHECK_NEAR(sd, sqrt(2.0 / 200), 0.03 * sqrt(2.0 / 200));
  int not_one = 0;
  for (size_t i = 0; i < m.params[1].count; i++) not_one += b1[i] != 1.0f;
  CHECK_INT_EQ(not_one, 0);
  const double lim = sqrt(6.0 / (100 + 50));
  double maxabs = 0;
  for (size_t i = 0; i < m.params[2].count; i++) maxabs = fmax(maxabs, fabs(k2[i]));
  CHECK(maxabs <= lim);
  CHECK(maxabs > 0.99 * lim); /* 5000 uniform draws reach the edge */
  int not_zero = 0;
  for (size_t i = 0; i < m.params[3].count; i++) not_zero += b2[i] != 0.0f;
  CHECK_INT_EQ(not_zero, 0);

  float *copy = malloc(m.num_params * sizeof(float));
  memcpy(copy, m.param_buf, m.num_params * sizeof(float));
  dt_rng_seed(&rng, 42);
  dt_model_init_params(&m, &rng, NULL);
  CHECK(memcmp(copy, m.param_buf, m.num_params * sizeof(float)) == 0);
  dt_rng_seed(&rng, 43);
  dt_model_init_params(&m, &rng, NULL);
  CHECK(memcmp(copy, m.param_buf, m.num_params * sizeof(float)) != 0);
  free(copy);
out:
  dt_model_free(&m);
  dt_config_free(cfg);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_errors(void) {
  /* Unknown layer type: names the location of the type key and the section, and lists
   * the known types. */
  check_build_error(
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\n[layer.2]\n"
      "type = conv9\n",
      dt_shape_1d(5), DT_ERR_CONFIG,
      NEEDLES("test:7", "[layer.2]", "'conv9'", "known:", "dense", "leaky_relu", "softmax",
              "dropout"),
      __LINE__);
  /* A dense layer without units. */
  check_build_error("[model]\nloss = mse\n[layer.1]\ntype = dense\n", dt_shape_1d(5), DT_ERR_CONFIG,
                    NEEDLES("test", "[layer.1]", "needs 'units'"), __LINE__);
  check_build_error("[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 0\n", dt_shape_1d(5),
                    DT_ERR_CONFIG, NEEDLES("test:5", "[layer.1]", "units"), __LINE__);
  /* A layer section without a type. */
  check_build_error("[model]\nloss = mse\n[layer.1]\nunits = 3\n", dt_shape_1d(5), DT_ERR_CONFIG,
                    NEEDLES("test", "[layer.1]", "no 'type'"), __LINE__);
  /* Cross-entropy over classes needs at least two outputs, with or without a softmax. */
  check_build_error(
      "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = dense\n"
      "units = 1\n",
      dt_shape_1d(5), DT_ERR_SHAPE, NEEDLES("test:2", "at least 2 outputs", "has 1"), __LINE__);
  check_build_error(
      "[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = dense\n"
      "units = 1\nactivation = softmax\n",
      dt_shape_1d(5), DT_ERR_SHAPE, NEEDLES("test:2", "at least 2 outputs"), __LINE__);
  /* Cross-entropy over classes needs a flat output: a 3-D input through element-wise
   * layers only is refused (element-wise losses such as mse take any shape). */
  check_build_error("[model]\nloss = sparse_categorical_crossentropy\n[layer.1]\ntype = relu\n",
                    dt_shape_3d(2, 2, 1), DT_ERR_SHAPE,
                    NEEDLES("test:2", "(2, 2, 1)", "flat", "sparse_categorical_crossentropy"),
                    __LINE__);
  /* No layers at all. */
  check_build_error("[model]\nloss = mse\n", dt_shape_1d(5), DT_ERR_CONFIG, NEEDLES("no [layer.1]"),
                    __LINE__);
  /* A layer section that is not numbered. */
  check_build_error("[model]\nloss = mse\n[layer.x]\ntype = dense\nunits = 3\n", dt_shape_1d(5),
                    DT_ERR_CONFIG, NEEDLES("test:3", "[layer.x]"), __LINE__);
  /* A bad activation name, and a layer type that is not an activation. */
  check_build_error(
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\n"
      "activation = relux\n",
      dt_shape_1d(5), DT_ERR_CONFIG,
      NEEDLES("test:6", "[layer.1]", "'relux'", "expected one of", "leaky_relu"), __LINE__);
  check_build_error(
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\n"
      "activation = dropout\n",
      dt_shape_1d(5), DT_ERR_CONFIG, NEEDLES("test:6", "[layer.1]", "'dropout'"), __LINE__);
  /* Bad loss, initializer and rate values. */
  check_build_error("[model]\nloss = hinge\n[layer.1]\ntype = dense\nunits = 3\n", dt_shape_1d(5),
                    DT_ERR_CONFIG, NEEDLES("test:2", "[model]", "hinge", "binary_crossentropy"),
                    __LINE__);
  check_build_error(
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\n"
      "kernel_initializer = lecun\n",
      dt_shape_1d(5), DT_ERR_CONFIG, NEEDLES("test:6", "[layer.1]", "lecun", "glorot_uniform"),
      __LINE__);
  check_build_error("[model]\nloss = mse\n[layer.1]\ntype = dropout\nrate = 1.5\n", dt_shape_1d(5),
                    DT_ERR_CONFIG, NEEDLES("test:5", "[layer.1]", "rate"), __LINE__);
  /* An error in a later layer, after earlier ones were built (and allocated). */
  check_build_error(
      "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\n[layer.2]\n"
      "type = dropout\nrate = 0.5\n[layer.3]\ntype = dense\nunits = -2\n",
      dt_shape_1d(5), DT_ERR_CONFIG, NEEDLES("test:11", "[layer.3]", "units"), __LINE__);

  /* A key that no layer reads is left for the unused-key check. */
  dt_model_t m;
  dt_config_t *cfg;
  if (build(&m, &cfg, "[model]\nloss = mse\n[layer.1]\ntype = dense\nunits = 3\nunit = 4\n",
            dt_shape_1d(5))) {
    dt_error_t err = {0};
    CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
    CHECK_STR_CONTAINS(err.msg, "test:6");
    CHECK_STR_CONTAINS(err.msg, "'unit'");
    CHECK_STR_CONTAINS(err.msg, "[layer.1]");
  }
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* On the CPU device the host views of the flat buffers are the buffers themselves, and
 * handing them back copies nothing. */
static void test_host_views(void) {
  dt_model_t m;
  dt_config_t *cfg;
  if (!build(&m, &cfg, layout_cfg, dt_shape_1d(5))) goto out;
  dt_error_t err = {0};
  float *p = NULL, *g = NULL, *st = NULL;
  CHECK_INT_EQ(dt_model_to_host(&m, DT_MODEL_PARAMS, &p, &err), 0);
  CHECK_INT_EQ(dt_model_to_host(&m, DT_MODEL_GRADS, &g, &err), 0);
  CHECK_INT_EQ(dt_model_to_host(&m, DT_MODEL_STATES, &st, &err), 0);
  CHECK(p == m.param_buf && g == m.grad_buf && st == m.state_buf);
  p[0] = 3.0f;
  CHECK_INT_EQ(dt_model_from_host(&m, DT_MODEL_PARAMS, &err), 0);
  CHECK_NEAR(m.param_buf[0], 3.0, 0.0);
out:
  dt_model_free(&m);
  dt_config_free(cfg);
}

int main(void) {
  test_layout();
  test_section_order();
  test_fusion();
  test_forward_backward_by_hand();
  test_grads_ready();
  test_host_views();
  test_init();
  test_errors();
  test_device_release();
  return test_summary("test_model");
}
