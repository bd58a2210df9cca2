/* Tests for the VAE's sampling layer and the loss terms layers add (issue 17): the
 * kernel's z, eps and KL values against hand computations; the model's aux loss (weighted
 * and raw) against the KL of its own z_mean and z_log_var; every parameter gradient of a
 * small VAE (encoder -> z_mean, z_log_var -> sampling -> decoder) against central
 * differences of reconstruction + kl_weight * KL, with the generator re-seeded before
 * each forward so that eps is fixed; evaluation without a generator giving z = z_mean;
 * running the decoder alone (dt_model_forward_from) equal to the whole model's decoder
 * part; and the errors of a sampling layer given inputs of two shapes or a tail that
 * reads around it. */
#include "gradcheck.h"

/* A small VAE on inputs of 5 values, 3 latent values. */
static const char VAE[] =
    "[model]\nloss = binary_crossentropy\n"
    "[layer.1]\ntype = dense\nunits = 6\nactivation = tanh\nname = h\n"
    "[layer.2]\ntype = dense\nunits = 3\nname = z_mean\ninputs = h\n"
    "[layer.3]\ntype = dense\nunits = 3\nname = z_log_var\ninputs = h\n"
    "[layer.4]\ntype = sampling\ninputs = z_mean, z_log_var\nkl_weight = 0.7\n"
    "[layer.5]\ntype = dense\nunits = 6\nactivation = tanh\n"
    "[layer.6]\ntype = dense\nunits = 5\nactivation = sigmoid\n";

/* The kernel: eps from the generator in order, z = mean + exp(lv / 2) eps, and the KL
 * of each row; eps = 0 and z = mean without a generator. */
static void test_kernel_values(void) {
  dt_device_t *dev = test_device();
  const float mean[6] = {0.5f, -1.0f, 0.0f, 2.0f, 0.25f, -0.5f};
  const float lv[6] = {0.0f, 1.0f, -2.0f, 0.5f, -0.1f, 0.3f};
  float eps[6], z[6], kl[2];
  dt_rng_t rng, ref;
  dt_rng_seed(&rng, 42);
  dt_rng_seed(&ref, 42);
  dt_device_gaussian_sample_forward(dev->stream, 2, 3, &rng, mean, lv, eps, z, kl);
  for (int i = 0; i < 6; i++) {
    const float e = dt_rng_normal(&ref);
    CHECK(eps[i] == e);
    CHECK_NEAR(z[i], mean[i] + exp(lv[i] / 2.0) * e, 1e-6);
  }
  /* By hand: row 0 = -0.5 [(1 + 0 - 0.25 - 1) + (1 + 1 - 1 - e) + (1 - 2 - 0 - e^-2)]. */
  const double kl0 = -0.5 * ((1 + 0 - 0.25 - 1) + (1 + 1 - 1 - exp(1.0)) + (1 - 2 - 0 - exp(-2.0)));
  const double kl1 = -0.5 * ((1 + 0.5 - 4 - exp(0.5)) + (1 - 0.1 - 0.0625 - exp(-0.1)) +
                             (1 + 0.3 - 0.25 - exp(0.3)));
  CHECK_NEAR(kl[0], kl0, 1e-5);
  CHECK_NEAR(kl[1], kl1, 1e-5);
  CHECK_NEAR(kl0, 1.5518086, 1e-6); /* -0.5 (-0.25 - 1.7182818 - 1.1353353), on paper */
  dt_device_gaussian_sample_forward(dev->stream, 2, 3, NULL, mean, lv, eps, z, kl);
  for (int i = 0; i < 6; i++) {
    CHECK(eps[i] == 0.0f);
    CHECK(z[i] == mean[i]);
  }
  CHECK_NEAR(kl[0], kl0, 1e-5);
  /* N(0, 1) itself is at no distance from the prior. */
  const float zero[3] = {0, 0, 0};
  dt_device_gaussian_sample_forward(dev->stream, 1, 3, NULL, zero, zero, eps, z, kl);
  CHECK(kl[0] == 0.0f);
}

/* reconstruction + weighted KL of the net's batch (eps fixed by n->fwd_seed). */
static double vae_loss(net_t *n, float *dout, double *recon, double *raw) {
  const double r = net_loss(n, dout);
  double weighted, kl_raw;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_model_aux_loss(&n->m, n->batch, &weighted, &kl_raw, &err), 0);
  if (recon) *recon = r;
  if (raw) *raw = kl_raw;
  return r + weighted;
}

static void test_model_terms_and_gradients(void) {
  dt_rng_t rng;
  dt_rng_seed(&rng, 7);
  net_t n;
  if (!net_build_shape(&n, VAE, dt_shape_1d(5), 4)) {
    net_free(&n);
    return;
  }
  dt_model_t *m = &n.m;
  CHECK(dt_model_has_aux_loss(m));
  n.training = true;
  n.fwd_seed = 99;
  net_init(&n, &rng);
  for (int i = 0; i < n.batch * n.in; i++) n.x[i] = uniform(&rng, -1.0f, 1.0f);
  net_targets(&n, &rng);

  /* The model's terms against the KL of its own z_mean and z_log_var (acts 2 and 3). */
  double recon, raw;
  const double total = vae_loss(&n, NULL, &recon, &raw);
  const float *mu = m->acts[2 + 1], *lv = m->acts[3 + 1];
  CHECK(strcmp(m->layers[4].ops->type, "sampling") == 0);
  double kl = 0;
  for (int i = 0; i < n.batch * 3; i++) kl += -0.5 * (1 + lv[i] - mu[i] * mu[i] - exp(lv[i]));
  kl /= n.batch;
  CHECK_NEAR(raw, kl, 1e-5);
  CHECK(raw > 0);
  CHECK_NEAR(total, recon + 0.7 * kl, 1e-5);
  /* The reported total is exactly the sum of its two reported parts. */
  double w, r2;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_model_aux_loss(m, n.batch, &w, &r2, &err), 0);
  CHECK(total == recon + w);

  /* Every parameter gradient against central differences of reconstruction + KL. */
  const double loss = vae_loss(&n, m->dout, NULL, NULL);
  dt_model_backward(m, n.batch);
  float *analytic = malloc(sizeof(float) * m->num_params);
  memcpy(analytic, m->grad_buf, sizeof(float) * m->num_params);
  for (int p = 0; p < m->nparams; p++) {
    const dt_param_info_t *pi = &m->params[p];
    for (size_t i = 0; i < pi->count; i++) {
      float *wp = &m->param_buf[pi->offset + i];
      const float w0 = *wp;
      *wp = w0 + EPS;
      const float hi = *wp;
      double lp = vae_loss(&n, NULL, NULL, NULL);
      *wp = w0 - EPS;
      const float lo = *wp;
      double lm = vae_loss(&n, NULL, NULL, NULL);
      *wp = w0;
      check_grad("vae", pi->name, i, analytic[pi->offset + i], (lp - lm) / ((double)hi - lo),
                 loss, __LINE__);
    }
  }
  free(analytic);

  /* Evaluation without a generator: z = z_mean, and the decoder run alone on z_mean
   * (dt_model_forward_from the sampling layer) gives the same outputs. */
  memcpy(m->acts[0], n.x, sizeof(float) * (size_t)n.batch * n.in);
  const float *y = dt_model_forward(m, n.batch, false, NULL);
  const size_t ny = (size_t)n.batch * n.out;
  float *whole = malloc(sizeof(float) * ny);
  memcpy(whole, y, sizeof(float) * ny);
  CHECK(memcmp(m->acts[4 + 1], m->acts[2 + 1], sizeof(float) * (size_t)n.batch * 3) == 0);
  float *zm = malloc(sizeof(float) * (size_t)n.batch * 3);
  memcpy(zm, m->acts[2 + 1], sizeof(float) * (size_t)n.batch * 3);
  CHECK_INT_EQ(dt_model_check_tail(m, 4, &err), 0);
  memcpy(m->acts[4 + 1], zm, sizeof(float) * (size_t)n.batch * 3);
  y = dt_model_forward_from(m, 4, n.batch, false, NULL);
  CHECK(memcmp(whole, y, sizeof(float) * ny) == 0);
  /* From z_mean the tail also reads h (through z_log_var): refused, naming the layer. */
  CHECK(dt_model_check_tail(m, 2, &err) == DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "z_log_var");
  CHECK_STR_CONTAINS(err.msg, "'h'");
  free(zm);
  free(whole);
  net_free(&n);
}

static void test_errors(void) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  dt_model_t m;
  memset(&m, 0, sizeof m);
  int rc = dt_config_load_string(cfg,
                                 "[model]\nloss = mse\n"
                                 "[layer.1]\ntype = dense\nunits = 3\nname = a\ninputs = input\n"
                                 "[layer.2]\ntype = dense\nunits = 2\nname = b\ninputs = input\n"
                                 "[layer.3]\ntype = sampling\ninputs = a, b\n",
                                 "vae.ini", &err);
  CHECK_INT_EQ(rc, 0);
  rc = dt_model_build(&m, test_device(), cfg, dt_shape_1d(4), &err);
  CHECK_INT_EQ(rc, DT_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.msg, "vae.ini");
  CHECK_STR_CONTAINS(err.msg, "[layer.3]");
  CHECK_STR_CONTAINS(err.msg, "one shape");
  dt_model_free(&m);
  dt_config_free(cfg);

  cfg = dt_config_new();
  memset(&m, 0, sizeof m);
  rc = dt_config_load_string(cfg,
                             "[model]\nloss = mse\n"
                             "[layer.1]\ntype = dense\nunits = 3\nname = a\ninputs = input\n"
                             "[layer.2]\ntype = dense\nunits = 3\nname = b\ninputs = input\n"
                             "[layer.3]\ntype = sampling\ninputs = a, b\nkl_weight = -1\n",
                             "vae.ini", &err);
  CHECK_INT_EQ(rc, 0);
  rc = dt_model_build(&m, test_device(), cfg, dt_shape_1d(4), &err);
  CHECK_INT_EQ(rc, DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "kl_weight");
  dt_model_free(&m);
  dt_config_free(cfg);
}

int main(void) {
  test_kernel_values();
  test_model_terms_and_gradients();
  test_errors();
  test_device_release();
  return test_summary("test_sampling");
}
