/* Builds a model from a config, gives it random parameters (and, with -s, random batch
 * norm moving statistics), runs a random batch through it and writes what the ONNX
 * parity test (tests/cli/test_onnx_export.sh) compares: OUT/model.onnx (dt_onnx_export),
 * OUT/x.npy (the inputs) and OUT/y.npy (the model's outputs; for a cross-entropy loss
 * the probabilities, the loss's softmax or sigmoid applied to the logits).
 *
 * usage: onnx_parity CONFIG OUT [-m NAME] [-i SHAPE] [-b BATCH] [-r SEED] [-d IDS] [-u] [-s]
 *                    [-S KEY=VALUE]...
 *   -m  the model of sections [NAME.layer.1], ... (a GAN's generator or discriminator),
 *       as a config of its own; -i and -S then apply to that config
 *   -i  the per-sample input shape ("28,28,1"); default: the config's model.input
 *   -d  inputs are integer ids in [0, IDS) (for embeddings) instead of normal floats
 *   -u  inputs uniform in [0, 1) (scaled pixels) instead of normal
 *   -s  random moving statistics: means ~ N(0, 1), variances in [0.5, 2)
 *   -S  a config override, as dtrain-worker's --set
 * Errors go to stderr as "error: MESSAGE" with exit status 1 (2 for usage). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/model.h"
#include "dtrain/onnx_export.h"

/* A little-endian float32 .npy file of shape (n, dims...). */
static int write_npy(const char *path, const float *v, int n, const dt_shape_t *s) {
  char shape[128];
  int len = snprintf(shape, sizeof shape, "(%d,", n);
  for (int i = 0; i < s->ndim; i++)
    len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%d", i ? ", " : " ", s->dims[i]);
  snprintf(shape + len, sizeof shape - (size_t)len, ")");
  char header[256];
  int h = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  /* Magic (6) + version (2) + header length (2) + header, padded to 64 with a newline. */
  int total = 10 + h + 1;
  int pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  const unsigned hl = (unsigned)(h + pad + 1);
  fputc((int)(hl & 255), f);
  fputc((int)(hl >> 8), f);
  fwrite(header, 1, (size_t)h, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  size_t count = (size_t)n * dt_shape_size(s);
  int ok = fwrite(v, sizeof *v, count, f) == count;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: onnx_parity CONFIG OUT [-m NAME] [-i SHAPE] [-b BATCH] [-r SEED] "
                    "[-d IDS] [-u] [-s] [-S KEY=VALUE]...\n");
    return 2;
  }
  const char *cfg_path = argv[1], *out = argv[2], *shape_arg = NULL, *sub = NULL;
  const char *sets[32];
  int nsets = 0;
  int batch = 4, ids = 0, random_states = 0, uniform = 0;
  unsigned long seed = 1;
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  if (!cfg || dt_config_load_file(cfg, cfg_path, &err)) goto fail;
  optind = 3;
  for (int c; (c = getopt(argc, argv, "m:i:b:r:d:usS:")) != -1;) {
    switch (c) {
    case 'm': sub = optarg; break;
    case 'i': shape_arg = optarg; break;
    case 'b': batch = atoi(optarg); break;
    case 'r': seed = strtoul(optarg, NULL, 10); break;
    case 'd': ids = atoi(optarg); break;
    case 's': random_states = 1; break;
    case 'u': uniform = 1; break;
    case 'S':
      if (nsets == 32) return 2;
      sets[nsets++] = optarg;
      break;
    default: return 2;
    }
  }
  if (sub) {
    /* The named model's sections as a config of their own, as a GAN run builds them. */
    dt_config_t *part = dt_config_new();
    int count = 0;
    if (!part || dt_config_extract(part, cfg, sub, &count, &err)) goto fail;
    dt_config_free(cfg);
    cfg = part;
    if (count == 0) {
      fprintf(stderr, "error: %s: no [%s.*] sections\n", cfg_path, sub);
      return 2;
    }
  }
  for (int i = 0; i < nsets; i++)
    if (dt_config_override(cfg, sets[i], &err)) goto fail;
  int dims[DT_MAX_DIMS] = {1, 1, 1, 1}, ndim = 0;
  if (shape_arg) {
    char assign[128];
    snprintf(assign, sizeof assign, "model.input=%s", shape_arg);
    if (dt_config_override(cfg, assign, &err)) goto fail;
  }
  if (dt_config_get_int_list(cfg, "model", "input", dims, DT_MAX_DIMS, &ndim, &err)) goto fail;
  if (ndim == 0) {
    fprintf(stderr, "error: %s: no model.input and no -i SHAPE\n", cfg_path);
    return 2;
  }
  dt_shape_t in = {ndim, {dims[0], dims[1], dims[2], dims[3]}};
  dt_device_t *dev = NULL;
  dt_device_options_t dopt = {0};
  dt_model_t m = {0};
  if (dt_device_create(&dopt, &dev, &err) || dt_model_build(&m, dev, cfg, in, &err) ||
      dt_model_prepare(&m, batch, &err))
    goto fail;
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  if (dt_model_init_params(&m, &rng, &err)) goto fail;
  float *params, *states = NULL;
  if (m.num_states) {
    if (dt_model_to_host(&m, DT_MODEL_STATES, &states, &err)) goto fail;
    if (random_states) {
      for (int i = 0; i < m.nstates; i++) {
        /* batch_norm's states are moving_mean, then moving_variance. */
        const bool var = strstr(m.states[i].name, "variance") != NULL;
        for (size_t j = 0; j < m.states[i].count; j++)
          states[m.states[i].offset + j] =
              var ? 0.5f + 1.5f * dt_rng_uniform(&rng) : dt_rng_normal(&rng);
      }
      if (dt_model_from_host(&m, DT_MODEL_STATES, &err)) goto fail;
    }
  }
  /* Biases, gammas and betas start at zeros or ones: give them some noise so that a
   * mistake in their mapping shows (the kernels are random already). */
  if (dt_model_to_host(&m, DT_MODEL_PARAMS, &params, &err)) goto fail;
  for (int i = 0; i < m.nparams; i++)
    if (m.params[i].init == DT_INIT_ZEROS || m.params[i].init == DT_INIT_ONES)
      for (size_t j = 0; j < m.params[i].count; j++)
        params[m.params[i].offset + j] += 0.1f * dt_rng_normal(&rng);
  if (dt_model_from_host(&m, DT_MODEL_PARAMS, &err)) goto fail;

  const size_t isz = dt_shape_size(&m.in_shape);
  float *x = m.acts[0];
  for (size_t j = 0; j < (size_t)batch * isz; j++)
    x[j] = ids       ? (float)dt_rng_below(&rng, (uint64_t)ids)
           : uniform ? dt_rng_uniform(&rng)
                     : dt_rng_normal(&rng);
  char path[4096];
  snprintf(path, sizeof path, "%s/x.npy", out);
  if (write_npy(path, x, batch, &m.in_shape)) {
    fprintf(stderr, "error: cannot write %s\n", path);
    return 1;
  }
  /* As predict runs it: no stream of numbers (a VAE's sampling layer gives z_mean). */
  float *y = (float *)dt_model_forward(&m, batch, false, NULL);
  if (dt_device_synchronize(dev, &err)) goto fail;
  /* The loss's softmax or sigmoid on the logits (in double): the ONNX file gives
   * probabilities. */
  const size_t osz = dt_shape_size(&m.out_shape);
  for (int b = 0; b < batch; b++) {
    float *z = y + (size_t)b * osz;
    if (m.loss == DT_LOSS_BCE_LOGITS) {
      for (size_t j = 0; j < osz; j++) z[j] = (float)(1.0 / (1.0 + exp(-(double)z[j])));
    } else if (m.loss == DT_LOSS_SOFTMAX_CE) {
      double mx = z[0], sum = 0.0;
      for (size_t j = 1; j < osz; j++) mx = z[j] > mx ? z[j] : mx;
      for (size_t j = 0; j < osz; j++) sum += exp((double)z[j] - mx);
      for (size_t j = 0; j < osz; j++) z[j] = (float)(exp((double)z[j] - mx) / sum);
    }
  }
  snprintf(path, sizeof path, "%s/y.npy", out);
  if (write_npy(path, y, batch, &m.out_shape)) {
    fprintf(stderr, "error: cannot write %s\n", path);
    return 1;
  }
  if (dt_model_to_host(&m, DT_MODEL_PARAMS, &params, &err)) goto fail;
  if (m.num_states && dt_model_to_host(&m, DT_MODEL_STATES, &states, &err)) goto fail;
  snprintf(path, sizeof path, "%s/model.onnx", out);
  if (dt_onnx_export(&m, params, states, path, &err)) goto fail;
  printf("layers %d params %zu\n", m.nlayers, m.num_params);
  dt_model_free(&m);
  dt_device_destroy(dev);
  dt_config_free(cfg);
  return 0;
fail:
  fprintf(stderr, "error: %s\n", err.msg);
  return 1;
}
