/* The saved models of a GAN run (see gan_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "gan_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dt_config_foreach's callback: copies the run's [train] keys into the model's config. */
typedef struct {
  dt_config_t *dst;
  dt_error_t *err;
} copy_ctx_t;

static int copy_train(void *ctx, const char *section, const char *key, const char *value) {
  copy_ctx_t *c = ctx;
  if (strcmp(section, "train") != 0) return 0;
  size_t len = strlen(key) + strlen(value) + 8;
  char *set = malloc(len);
  if (!set) return dt_error_set(c->err, DT_ERR_NOMEM, "out of memory");
  snprintf(set, len, "train.%s=%s", key, value);
  int rc = dt_config_override(c->dst, set, c->err);
  free(set);
  return rc;
}

/* One model's config as a saved model stores it: its own sections (sub, already without
 * the prefix), [model] input, and the run's [train]. */
static int model_config(dt_config_t *sub, const dt_config_t *run, const char *input,
                        dt_config_t **out, dt_error_t *err) {
  size_t len = dt_config_to_string(sub, NULL, 0);
  char *text = malloc(len + 1);
  dt_config_t *cfg = dt_config_new();
  int rc = 0;
  if (!text || !cfg) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
  if (!rc) {
    dt_config_to_string(sub, text, len + 1);
    rc = dt_config_load_string(cfg, text, "the GAN run's config", err);
  }
  char set[96];
  snprintf(set, sizeof set, "model.input=%s", input);
  if (!rc) rc = dt_config_override(cfg, set, err);
  copy_ctx_t ctx = {cfg, err};
  if (!rc) rc = dt_config_foreach(run, copy_train, &ctx);
  free(text);
  if (rc) {
    if (cfg) dt_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

/* "28,28,1" */
static void shape_list(const dt_shape_t *s, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int d = 0; d < s->ndim && used < cap; d++)
    used += (size_t)snprintf(buf + used, cap - used, d ? ",%d" : "%d", s->dims[d]);
}

int gan_model_save(final_model_opts_t *o, const dt_config_t *run_cfg, const gan_model_run_t *r,
                   gan_t *gan, const char *why, bool average_states, dt_error_t *err) {
  if (!o->enabled) return 0;
  char input[64], pre[160];
  dt_config_t *gcfg = NULL, *dcfg = NULL;
  snprintf(input, sizeof input, "%ld", gan->opt.latent_dim);
  int rc = model_config(gan->gcfg, run_cfg, input, &gcfg, err);
  shape_list(&gan->d.in_shape, input, sizeof input);
  if (!rc) rc = model_config(gan->dcfg, run_cfg, input, &dcfg, err);
  if (rc) {
    if (gcfg) dt_config_free(gcfg);
    return dt_error_prefix(err, "making the GAN's saved models' configs: ");
  }
  /* z: latent_dim values that generate draws from N(0, 1), or a .npy file for predict. */
  snprintf(pre, sizeof pre, "{\"format\": \"numpy\", \"input_shape\": [%ld], \"scale\": \"none\", "
           "\"latent_dim\": %ld}", gan->opt.latent_dim, gan->opt.latent_dim);
  char gwhy[160], dwhy[160];
  snprintf(gwhy, sizeof gwhy, "generator, %s", why);
  snprintf(dwhy, sizeof dwhy, "discriminator, %s", why);
  final_model_run_t g = {r->comm, &gan->g, gcfg, pre, r->run_dir, r->log, r->step, r->epoch,
                         TARGET_VALUES, "generate (or predict, export)"};
  final_model_run_t d = {r->comm,  &gan->d, dcfg, r->preprocess_json, r->run_dir, r->log,
                         r->step,  r->epoch, TARGET_VALUES, "predict"};
  /* The discriminator beside the generator. */
  final_model_opts_t dopt = *o;
  if (o->dir[0]) {
    if (snprintf(dopt.dir, sizeof dopt.dir, "%s-discriminator", o->dir) >= (int)sizeof dopt.dir)
      dopt.enabled = false;
  } else if (snprintf(dopt.dir, sizeof dopt.dir, "%s/discriminator", r->run_dir) >=
             (int)sizeof dopt.dir) {
    dopt.enabled = false;
  }
  rc = final_model_save(o, &g, gwhy, average_states, err);
  if (!rc) rc = final_model_save(&dopt, &d, dwhy, average_states, err);
  if (dopt.failed) o->failed = true;
  dt_config_free(gcfg);
  dt_config_free(dcfg);
  return rc;
}
