/* The GAN's steps (src/worker/gan_step.c):
 *  - one discriminator step and one generator step give, bit for bit, the parameters
 *    that the same updates composed by hand from the model, loss and optimizer calls
 *    give (with label smoothing, two optimizer kinds, a transposed convolution in G and
 *    a convolution in D);
 *  - the discriminator step changes only D, the generator step only G;
 *  - D's input gradient (what flows from D into G) matches central differences;
 *  - config errors name the section and the file: no discriminator, a discriminator
 *    with two outputs, a generator whose images do not fit the data, a misspelt key. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/loss.h"
#include "gan_step.h"
#include "test_util.h"

static const char *const CONFIG =
    "[gan]\nlatent_dim = 5\nlabel_smoothing = 0.1\n"
    "[generator.layer.1]\ntype = dense\nunits = 12\nactivation = leaky_relu\n"
    "[generator.layer.2]\ntype = reshape\ntarget_shape = 2,2,3\n"
    "[generator.layer.3]\ntype = conv2d_transpose\nfilters = 1\nkernel_size = 3\nstrides = 2\n"
    "padding = same\nactivation = sigmoid\n"
    "[generator.optimizer]\ntype = adam\nlr = 0.01\nbeta1 = 0.5\n"
    "[discriminator.layer.1]\ntype = conv2d\nfilters = 3\nkernel_size = 3\npadding = same\n"
    "[discriminator.layer.2]\ntype = leaky_relu\nalpha = 0.2\n"
    "[discriminator.layer.3]\ntype = flatten\n"
    "[discriminator.layer.4]\ntype = dense\nunits = 1\n"
    "[discriminator.optimizer]\ntype = sgd\nmomentum = 0.9\nlr = 0.05\n";

enum { B = 3, IMG = 16, LATENT = 5 };
static const dt_shape_t IMAGE = {3, {4, 4, 1, 1}};

static int build(gan_t *gan, dt_device_t *dev, const char *text, dt_error_t *err) {
  dt_config_t *cfg = dt_config_new();
  int rc = dt_config_load_string(cfg, text, "gan.ini", err);
  if (!rc) rc = gan_build(gan, cfg, dev, IMAGE, 0.001, err);
  if (!rc) rc = gan_check_unused(gan, err);
  dt_config_free(cfg);
  return rc;
}

static void setup(gan_t *gan, dt_device_t *dev) {
  dt_error_t err = {0};
  int rc = build(gan, dev, CONFIG, &err);
  if (!rc) rc = gan_prepare(gan, B, &err);
  dt_rng_t rng;
  dt_rng_seed(&rng, 42);
  if (!rc) rc = dt_model_init_params(&gan->g, &rng, &err);
  if (!rc) rc = dt_model_init_params(&gan->d, &rng, &err);
  if (rc) fprintf(stderr, "setup: %s\n", err.msg);
  CHECK_INT_EQ(rc, 0);
}

static void update(dt_model_t *m, dt_optim_t *o, float lr) {
  dt_optim_begin_step(o);
  dt_optim_update(o, m->param_buf, m->grad_buf, 0, m->num_params, lr, m->params, m->nparams);
}

/* The discriminator step and the generator step, from the model, loss and optimizer
 * calls. */
static void by_hand(gan_t *h, const float *real, const float *z1, const float *z2) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  float t[2 * B];
  memcpy(h->g.acts[0], z1, sizeof(float) * B * LATENT);
  const float *fake = dt_model_forward(&h->g, B, true, &rng);
  memcpy(h->d.acts[0], real, sizeof(float) * B * IMG);
  memcpy(h->d.acts[0] + B * IMG, fake, sizeof(float) * B * IMG);
  for (int i = 0; i < B; i++) t[i] = 0.9f, t[B + i] = 0.0f;
  const float *y = dt_model_forward(&h->d, 2 * B, true, &rng);
  dt_loss_compute(DT_LOSS_BCE_LOGITS, y, 2 * B, 1, NULL, t, h->d.dout);
  dt_model_backward(&h->d, 2 * B);
  update(&h->d, &h->d_opt, 0.05f);

  memcpy(h->g.acts[0], z2, sizeof(float) * B * LATENT);
  fake = dt_model_forward(&h->g, B, true, &rng);
  memcpy(h->d.acts[0], fake, sizeof(float) * B * IMG);
  for (int i = 0; i < B; i++) t[i] = 1.0f;
  y = dt_model_forward(&h->d, B, true, &rng);
  dt_loss_compute(DT_LOSS_BCE_LOGITS, y, B, 1, NULL, t, h->d.dout);
  float dx[B * IMG];
  gan_backward_to_input(&h->d, B, dx);
  memcpy(h->g.dout, dx, sizeof dx);
  dt_model_backward(&h->g, B);
  update(&h->g, &h->g_opt, 0.01f);
}

static bool same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * 4) == 0; }

static void test_step_equals_hand(dt_device_t *dev) {
  gan_t a, h;
  setup(&a, dev);
  setup(&h, dev);
  CHECK(a.g_lr == 0.01 && a.d_lr == 0.05);
  float real[B * IMG], z1[B * LATENT], z2[B * LATENT];
  dt_rng_t rng;
  dt_rng_seed(&rng, 3);
  for (int i = 0; i < B * IMG; i++) real[i] = dt_rng_uniform(&rng);
  for (int i = 0; i < B * LATENT; i++) z1[i] = dt_rng_normal(&rng), z2[i] = dt_rng_normal(&rng);

  size_t ng = a.g.num_params, nd = a.d.num_params;
  float *g0 = malloc(ng * 4), *d0 = malloc(nd * 4), *d1 = malloc(nd * 4), *g1 = malloc(ng * 4);
  memcpy(g0, a.g.param_buf, ng * 4);
  memcpy(d0, a.d.param_buf, nd * 4);
  dt_rng_t noise;
  dt_rng_seed(&noise, 7);
  gan_stats_t st = {0};
  dt_error_t err = {0};
  CHECK_INT_EQ(gan_d_step(&a, real, z1, (float)a.d_lr, &noise, &st, &err), 0);
  /* The discriminator step changes D, not G. */
  CHECK(same(a.g.param_buf, g0, ng));
  CHECK(!same(a.d.param_buf, d0, nd));
  memcpy(d1, a.d.param_buf, nd * 4);
  CHECK(st.d_loss > 0.1 && st.d_loss < 2.0);
  CHECK(st.d_real > 0.0 && st.d_real < 1.0 && st.d_fake > 0.0 && st.d_fake < 1.0);
  CHECK_INT_EQ(gan_g_step(&a, z2, (float)a.g_lr, &noise, &st, &err), 0);
  /* The generator step changes G, not D. */
  CHECK(same(a.d.param_buf, d1, nd));
  CHECK(!same(a.g.param_buf, g0, ng));
  memcpy(g1, a.g.param_buf, ng * 4);

  by_hand(&h, real, z1, z2);
  CHECK(same(h.d.param_buf, a.d.param_buf, nd));
  CHECK(same(h.g.param_buf, a.g.param_buf, ng));
  CHECK_INT_EQ(a.g_opt.step, 1);
  CHECK_INT_EQ(a.d_opt.step, 1);
  free(g0);
  free(d0);
  free(d1);
  free(g1);
  gan_free(&a);
  gan_free(&h);
}

/* Mean BCE(D(x), 1) over the batch. */
static double d_loss_at(gan_t *gan, const float *x) {
  float t[B] = {1, 1, 1};
  memcpy(gan->d.acts[0], x, sizeof(float) * B * IMG);
  const float *y = dt_model_forward(&gan->d, B, true, NULL);
  return dt_loss_compute(DT_LOSS_BCE_LOGITS, y, B, 1, NULL, t, NULL);
}

static void test_input_gradient(dt_device_t *dev) {
  gan_t gan;
  setup(&gan, dev);
  float x[B * IMG], dx[B * IMG];
  dt_rng_t rng;
  dt_rng_seed(&rng, 5);
  for (int i = 0; i < B * IMG; i++) x[i] = dt_rng_uniform(&rng);
  float t[B] = {1, 1, 1};
  memcpy(gan.d.acts[0], x, sizeof x);
  const float *y = dt_model_forward(&gan.d, B, true, NULL);
  dt_loss_compute(DT_LOSS_BCE_LOGITS, y, B, 1, NULL, t, gan.d.dout);
  gan_backward_to_input(&gan.d, B, dx);
  double worst = 0, scale = 0;
  for (int i = 0; i < B * IMG; i++) {
    float keep = x[i];
    const float eps = 1e-2f;
    x[i] = keep + eps;
    double up = d_loss_at(&gan, x);
    x[i] = keep - eps;
    double down = d_loss_at(&gan, x);
    x[i] = keep;
    double fd = (up - down) / (2.0 * eps);
    worst = fmax(worst, fabs(fd - dx[i]));
    scale = fmax(scale, fabs(fd));
  }
  /* float forward passes: differences of about 1e-7 / 1e-2 per value. */
  CHECK(scale > 1e-3);
  CHECK_NEAR(worst, 0.0, 2e-4 + 1e-2 * scale);
  gan_free(&gan);
}

static void expect_error(dt_device_t *dev, const char *text, int code, const char *needle,
                         const char *needle2) {
  gan_t gan;
  dt_error_t err = {0};
  int rc = build(&gan, dev, text, &err);
  CHECK_INT_EQ(rc, code);
  CHECK_STR_CONTAINS(err.msg, needle);
  CHECK_STR_CONTAINS(err.msg, needle2);
  gan_free(&gan);
}

static char *replace(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  char *out = malloc(strlen(s) + strlen(to) + 1);
  size_t k = (size_t)(p - s);
  memcpy(out, s, k);
  strcpy(out + k, to);
  strcat(out, p + strlen(from));
  return out;
}

static void test_config_errors(dt_device_t *dev) {
  char *no_d = strdup(CONFIG);
  *strstr(no_d, "[discriminator.layer.1]") = '\0';
  expect_error(dev, no_d, DT_ERR_CONFIG, "gan.ini [gan]", "[discriminator.layer.1]");
  free(no_d);
  char *two = replace(CONFIG, "units = 1\n", "units = 2\n");
  expect_error(dev, two, DT_ERR_SHAPE, "[discriminator.layer.4]", "gan.ini [discriminator.layer.4]");
  free(two);
  char *big = replace(CONFIG, "strides = 2\n", "strides = 3\n");
  expect_error(dev, big, DT_ERR_SHAPE, "[generator.layer.3]", "(4, 4, 1)");
  free(big);
  char *typo = replace(CONFIG, "alpha = 0.2\n", "alpah = 0.2\n");
  /* Line 29 of the config: the misspelt key. */
  expect_error(dev, typo, DT_ERR_CONFIG, "gan.ini:29: unknown key 'alpah'",
               "[discriminator.*]");
  free(typo);
}

int main(void) {
  dt_device_t *dev;
  dt_error_t err = {0};
  if (dt_device_create(&(dt_device_options_t){0}, &dev, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  test_step_equals_hand(dev);
  test_input_gradient(dev);
  test_config_errors(dev);
  dt_device_destroy(dev);
  return test_summary("test_gan_step");
}
