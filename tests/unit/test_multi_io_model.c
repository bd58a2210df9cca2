/* Models with several inputs and outputs (issue 17): the gradient of the weighted total
 * loss sum_k w_k loss_k through a two-input (concatenated), two-output model (a class
 * head with sparse cross-entropy and a value head with MSE, weights 0.7 and 2.5), with
 * one output also read by a later layer, against central differences of every
 * parameter; inputs land in their own buffers; config errors name [model] keys. */
#include <math.h>
#include <string.h>

#include "device_util.h"
#include "dtrain/config.h"
#include "dtrain/loss.h"
#include "dtrain/model.h"
#include "test_util.h"

static const char model_text[] =
    "[model]\n"
    "inputs = a, b\n"
    "outputs = cls, value\n"
    "losses = sparse_categorical_crossentropy, mse\n"
    "loss_weights = 0.7, 2.5\n"
    "[layer.1]\ntype = dense\nname = da\ninputs = a\nunits = 4\nactivation = tanh\n"
    "[layer.2]\ntype = concatenate\nname = cat\ninputs = tanh_1, b\n"
    "[layer.3]\ntype = dense\nname = trunk\nunits = 5\nactivation = tanh\n"
    "[layer.4]\ntype = dense\nname = cls\ninputs = tanh_2\nunits = 3\n"
    "[layer.5]\ntype = dense\nname = value\ninputs = tanh_2\nunits = 2\n";

enum { BATCH = 4 };

static bool build(dt_model_t *m, dt_config_t **cfg, const char *text, dt_error_t *err) {
  *cfg = dt_config_new();
  int rc = dt_config_load_string(*cfg, text, "test", err);
  const dt_shape_t in[2] = {{1, {3, 1, 1, 1}}, {1, {2, 1, 1, 1}}};
  if (!rc) rc = dt_model_build_multi(m, test_device(), *cfg, in, 2, err);
  if (!rc) rc = dt_model_prepare(m, BATCH, err);
  return rc == 0;
}

static int32_t labels[BATCH] = {0, 2, 1, 2};
static float targets[BATCH * 2];

/* The weighted total after a forward; with grad, the outputs' douts too. */
static double total_loss(dt_model_t *m, bool grad) {
  dt_model_forward(m, BATCH, true, NULL);
  double total = 0.0;
  for (int k = 0; k < m->nout; k++) {
    dt_model_output_t *o = &m->outputs[k];
    int dim = (int)dt_shape_size(&o->shape);
    double l = dt_loss_compute(o->loss, dt_model_output(m, k), BATCH, dim, labels, targets,
                               grad ? o->dout : NULL);
    if (grad)
      for (int i = 0; i < BATCH * dim; i++) o->dout[i] *= o->weight;
    total += o->weight * l;
  }
  return total;
}

static void test_gradients(void) {
  dt_model_t m;
  dt_config_t *cfg;
  dt_error_t err = {0};
  if (!build(&m, &cfg, model_text, &err)) {
    fprintf(stderr, "build: %s\n", err.msg);
    CHECK(false);
    return;
  }
  CHECK_INT_EQ(m.nin, 2);
  CHECK_INT_EQ(m.nout, 2);
  CHECK_NEAR(m.outputs[1].weight, 2.5, 0);
  CHECK_INT_EQ((int)m.outputs[0].loss, (int)DT_LOSS_SOFTMAX_CE);
  CHECK_INT_EQ((int)m.outputs[1].loss, (int)DT_LOSS_MSE);
  dt_rng_t rng;
  dt_rng_seed(&rng, 11);
  CHECK_INT_EQ(dt_model_init_params(&m, &rng, &err), 0);
  /* Input j's values go to its own buffer: a sample is a's 3 values, then b's 2. */
  float x[BATCH * 5];
  for (int i = 0; i < BATCH * 5; i++) x[i] = (float)sin(1.3 * i + 0.2);
  dt_model_set_inputs(&m, x, BATCH);
  CHECK_NEAR(dt_model_input(&m, 0)[3], x[5], 0);
  CHECK_NEAR(dt_model_input(&m, 1)[2], x[8], 0);
  CHECK_NEAR(dt_model_input(&m, 1)[1], x[4], 0);
  for (int i = 0; i < BATCH * 2; i++) targets[i] = (float)cos(0.7 * i);
  total_loss(&m, true);
  dt_model_backward(&m, BATCH);
  float *g = m.grad_buf, *w = m.param_buf;
  const double eps = 1e-3;
  int bad = 0;
  for (size_t i = 0; i < m.num_params; i++) {
    float keep = w[i];
    w[i] = keep + (float)eps;
    double up = total_loss(&m, false);
    w[i] = keep - (float)eps;
    double down = total_loss(&m, false);
    w[i] = keep;
    double num = (up - down) / (2 * eps);
    if (fabs(num - g[i]) > 2e-3 + 2e-2 * fabs(num)) {
      if (bad++ < 5) fprintf(stderr, "  param %zu: analytic %g, numeric %g\n", i, g[i], num);
    }
  }
  CHECK_INT_EQ(bad, 0);
  dt_model_free(&m);
  dt_config_free(cfg);
}

/* An output that a later layer also reads gets both gradients. */
static void test_output_also_read(void) {
  static const char text[] =
      "[model]\ninputs = a, b\noutputs = mid, value\nlosses = mse, mse\nloss_weights = 3, 1\n"
      "[layer.1]\ntype = concatenate\nname = cat\ninputs = a, b\n"
      "[layer.2]\ntype = dense\nname = mid\nunits = 2\n"
      "[layer.3]\ntype = dense\nname = value\ninputs = mid\nunits = 2\n";
  dt_model_t m;
  dt_config_t *cfg;
  dt_error_t err = {0};
  if (!build(&m, &cfg, text, &err)) {
    fprintf(stderr, "build: %s\n", err.msg);
    CHECK(false);
    return;
  }
  dt_rng_t rng;
  dt_rng_seed(&rng, 5);
  CHECK_INT_EQ(dt_model_init_params(&m, &rng, &err), 0);
  float x[BATCH * 5];
  for (int i = 0; i < BATCH * 5; i++) x[i] = (float)cos(0.9 * i);
  dt_model_set_inputs(&m, x, BATCH);
  for (int i = 0; i < BATCH * 2; i++) targets[i] = (float)sin(0.3 * i);
  total_loss(&m, true);
  dt_model_backward(&m, BATCH);
  int bad = 0;
  for (size_t i = 0; i < m.num_params; i++) {
    float keep = m.param_buf[i];
    m.param_buf[i] = keep + 1e-3f;
    double up = total_loss(&m, false);
    m.param_buf[i] = keep - 1e-3f;
    double down = total_loss(&m, false);
    m.param_buf[i] = keep;
    double num = (up - down) / 2e-3;
    if (fabs(num - m.grad_buf[i]) > 2e-3 + 2e-2 * fabs(num)) bad++;
  }
  CHECK_INT_EQ(bad, 0);
  dt_model_free(&m);
  dt_config_free(cfg);
}

static void check_error(const char *text, const char *needle) {
  dt_model_t m;
  memset(&m, 0, sizeof m);
  dt_config_t *cfg;
  dt_error_t err = {0};
  CHECK(!build(&m, &cfg, text, &err));
  CHECK_STR_CONTAINS(err.msg, needle);
  dt_model_free(&m);
  dt_config_free(cfg);
}

static void test_errors(void) {
  static const char layers[] =
      "[layer.1]\ntype = concatenate\nname = cat\ninputs = a, b\n"
      "[layer.2]\ntype = dense\nname = h1\ninputs = cat\nunits = 2\n"
      "[layer.3]\ntype = dense\nname = h2\ninputs = cat\nunits = 2\n";
  char text[1024];
  snprintf(text, sizeof text, "[model]\ninputs = a, b\noutputs = h1, hx\n%s", layers);
  check_error(text, "test:3: [model] outputs: unknown layer 'hx'");
  snprintf(text, sizeof text, "[model]\ninputs = a, b\noutputs = h1, h2\nlosses = mse\n%s", layers);
  check_error(text, "test:4: [model] losses = 'mse': expected one loss per output (2");
  snprintf(text, sizeof text, "[model]\ninputs = a, b\noutputs = h1, h2\nloss_weights = 1, -1\n%s",
           layers);
  check_error(text, "test:4: [model] loss_weights: '-1' is not a number >= 0");
  snprintf(text, sizeof text, "[model]\ninputs = a\noutputs = h1, h2\n%s", layers);
  check_error(text, "[layer.1] inputs: unknown layer 'b'");
  snprintf(text, sizeof text, "[model]\ninputs = a, b, c\noutputs = h1, h2\n%s", layers);
  check_error(text, "test:2: no layer takes the model's input c");
  snprintf(text, sizeof text, "[model]\ninputs = a, b\noutputs = h1\n%s", layers);
  check_error(text, "[layer.3] nobody uses the output of 'h2'");
}

int main(void) {
  test_gradients();
  test_output_also_read();
  test_errors();
  test_device_release();
  return test_summary("test_multi_io_model");
}
