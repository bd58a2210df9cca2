/* keras_tool: dtrain's side of the Keras parity tests (tests/cli/test_keras_*.sh).
 *
 *   keras_tool forward MODEL.ini WEIGHTS.safetensors IN.npy OUT.npy
 *     builds the model of MODEL.ini ([model] input gives the sample shape), loads the
 *     weights (dt_keras_weights_load), runs forward in inference mode through every
 *     layer (a final softmax included) and writes the outputs as float32 .npy.
 *   keras_tool export MODEL.ini SEED|WEIGHTS.safetensors OUT.keras [IN.npy OUT.npy]
 *     builds the model, fills every parameter with uniform values in [-0.5, 0.5] and
 *     batch norm's moving mean in [-0.5, 0.5] and moving variance in [0.5, 1.5] (so that
 *     inference-mode batch norm is not the identity), or loads the weights of a
 *     safetensors file (a saved model's model.safetensors), exports it with
 *     dt_keras_export, and with IN.npy writes dtrain's outputs on it.
 *   keras_tool import FILE OUTDIR
 *     dt_keras_import + dt_keras_import_write.
 * Exit 0 on success, 1 on a library error (printed), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/keras.h"
#include "dtrain/rng.h"

/* A float32 C-order .npy: its data (malloc'd), the number of samples and values. */
static float *read_npy(const char *path, size_t *rows, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char pre[10];
  char hdr[4096];
  float *v = NULL;
  if (fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0 && pre[6] == 1) {
    size_t hl = pre[8] | (size_t)pre[9] << 8;
    if (hl < sizeof hdr && fread(hdr, 1, hl, f) == hl) {
      hdr[hl] = '\0';
      char *sh = strstr(hdr, "'shape': (");
      if (strstr(hdr, "'<f4'") && strstr(hdr, "'fortran_order': False") && sh) {
        sh += 10;
        size_t n = 1;
        *rows = strtoul(sh, NULL, 10);
        for (char *p = sh; *p && *p != ')';) {
          n *= strtoul(p, &p, 10);
          while (*p == ',' || *p == ' ') p++;
        }
        v = malloc(n * sizeof *v + 1);
        if (v && fread(v, sizeof *v, n, f) != n) {
          free(v);
          v = NULL;
        }
        *count = n;
      }
    }
  }
  fclose(f);
  return v;
}

static int write_npy(const char *path, const float *v, int rows, const dt_shape_t *s) {
  char shape[128];
  int o = snprintf(shape, sizeof shape, "(%d,", rows);
  for (int i = 0; i < s->ndim; i++) o += snprintf(shape + o, sizeof shape - (size_t)o, " %d,", s->dims[i]);
  if (s->ndim) shape[o - 1] = '\0';
  char hdr[256];
  int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s), }", shape);
  while ((10 + hl + 1) % 64) hdr[hl++] = ' ';
  hdr[hl++] = '\n';
  FILE *f = fopen(path, "wb");
  if (!f) return 1;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                           (unsigned char)(hl >> 8)};
  size_t n = (size_t)rows * dt_shape_size(s);
  int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(hdr, 1, (size_t)hl, f) != (size_t)hl ||
            fwrite(v, sizeof *v, n, f) != n;
  return fclose(f) != 0 || bad;
}

typedef struct {
  dt_device_t *dev;
  dt_config_t *cfg;
  dt_model_t m;
  bool built;
} ctx_t;

static int build(ctx_t *c, const char *ini, dt_error_t *err) {
  dt_device_options_t opt = {0};
  int rc = dt_device_create(&opt, &c->dev, err);
  if (rc) return rc;
  c->cfg = dt_config_new();
  if ((rc = dt_config_load_file(c->cfg, ini, err))) return rc;
  int dims[4], n;
  if ((rc = dt_config_get_int_list(c->cfg, "model", "input", dims, 4, &n, err))) return rc;
  dt_shape_t in = {n, {1, 1, 1, 1}};
  for (int i = 0; i < n; i++) in.dims[i] = dims[i];
  rc = dt_model_build(&c->m, c->dev, c->cfg, in, err);
  c->built = true;
  return rc;
}

static int forward(ctx_t *c, const char *in, const char *out, dt_error_t *err) {
  size_t rows, count;
  float *x = read_npy(in, &rows, &count);
  if (!x) return dt_error_set(err, DT_ERR_IO, "%s: cannot read a float32 .npy", in);
  dt_model_t *m = &c->m;
  int rc = 0;
  if (count != rows * dt_model_input_size(m))
    rc = dt_error_set(err, DT_ERR_SHAPE, "%s: %zu values for %zu samples of %zu", in, count,
                      rows, dt_model_input_size(m));
  if (!rc) rc = dt_model_prepare(m, (int)rows, err);
  if (!rc) {
    memcpy(m->acts[0], x, count * sizeof *x); /* the CPU device: host memory */
    m->nrun = m->nlayers;                     /* a final softmax too */
    dt_rng_t rng;
    dt_rng_seed(&rng, 1);
    dt_model_forward(m, (int)rows, false, &rng);
    /* The last layer's values (the forward's result is what the loss sees, before it). */
    const float *y = m->acts[m->nlayers];
    const dt_shape_t *s = &m->layers[m->nlayers - 1].out_shape;
    if (write_npy(out, y, (int)rows, s)) rc = dt_error_set(err, DT_ERR_IO, "%s: cannot write", out);
  }
  free(x);
  return rc;
}

static int randomize(ctx_t *c, unsigned long seed, float **params, float **states,
                     dt_error_t *err) {
  dt_model_t *m = &c->m;
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  int rc = dt_model_to_host(m, DT_MODEL_PARAMS, params, err);
  if (!rc && m->nstates) rc = dt_model_to_host(m, DT_MODEL_STATES, states, err);
  if (rc) return rc;
  for (size_t i = 0; i < m->num_params; i++) (*params)[i] = (float)(dt_rng_uniform(&rng) - 0.5);
  for (int t = 0; t < m->nstates; t++) {
    bool var = strstr(m->states[t].name, "variance") != NULL;
    for (size_t i = 0; i < m->states[t].count; i++)
      (*states)[m->states[t].offset + i] = (float)(dt_rng_uniform(&rng) - 0.5 + (var ? 1.0 : 0.0));
  }
  rc = dt_model_from_host(m, DT_MODEL_PARAMS, err);
  if (!rc && m->nstates) rc = dt_model_from_host(m, DT_MODEL_STATES, err);
  return rc;
}

int main(int argc, char **argv) {
  dt_error_t err = {0};
  ctx_t c = {0};
  int rc;
  if (argc == 6 && !strcmp(argv[1], "forward")) {
    rc = build(&c, argv[2], &err);
    if (!rc) rc = dt_keras_weights_load(&c.m, argv[3], &err);
    if (!rc) rc = forward(&c, argv[4], argv[5], &err);
  } else if ((argc == 5 || argc == 7) && !strcmp(argv[1], "export")) {
    float *params = NULL, *states = NULL;
    rc = build(&c, argv[2], &err);
    size_t n = strlen(argv[3]);
    bool file = n > 12 && !strcmp(argv[3] + n - 12, ".safetensors");
    if (!rc && file) rc = dt_keras_weights_load(&c.m, argv[3], &err);
    if (!rc && file) rc = dt_model_to_host(&c.m, DT_MODEL_PARAMS, &params, &err);
    if (!rc && file && c.m.nstates) rc = dt_model_to_host(&c.m, DT_MODEL_STATES, &states, &err);
    if (!rc && !file) rc = randomize(&c, strtoul(argv[3], NULL, 10), &params, &states, &err);
    if (!rc) rc = dt_keras_export(&c.m, c.cfg, params, states, argv[4], &err);
    if (!rc && argc == 7) rc = forward(&c, argv[5], argv[6], &err);
  } else if (argc == 4 && !strcmp(argv[1], "import")) {
    dt_keras_import_t imp;
    rc = dt_keras_import(argv[2], &imp, &err);
    if (!rc) rc = dt_keras_import_write(&imp, argv[3], &err);
    if (!rc) dt_keras_import_free(&imp);
  } else {
    fprintf(stderr, "usage: keras_tool forward MODEL.ini WEIGHTS.safetensors IN.npy OUT.npy\n"
                    "       keras_tool export MODEL.ini SEED OUT.keras [IN.npy OUT.npy]\n"
                    "       keras_tool import FILE OUTDIR\n");
    return 2;
  }
  if (c.built) dt_model_free(&c.m);
  dt_config_free(c.cfg);
  dt_device_destroy(c.dev);
  if (rc) {
    fprintf(stderr, "keras_tool: %s\n", err.msg);
    return 1;
  }
  return 0;
}
