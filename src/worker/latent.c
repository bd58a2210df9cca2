/* Samples from a generative model's latent space (see latent.h). */
#include "latent.h"

#include <math.h>
#include <string.h>

int latent_find(const dt_model_t *m, const char *layer, latent_t *out, dt_error_t *err) {
  out->from = DT_LAYER_MODEL_INPUT;
  if (layer) {
    int found = -2;
    for (int i = 0; i < m->nrun; i++)
      if (strcmp(m->layers[i].name, layer) == 0) found = i;
    if (found == -2)
      return dt_error_set(err, DT_ERR_ARG, "the model has no layer '%s' (that it runs)", layer);
    out->from = found;
  } else {
    int count = 0;
    for (int i = 0; i < m->nrun; i++)
      if (strcmp(m->layers[i].ops->type, "sampling") == 0) {
        out->from = i;
        count++;
      }
    if (count > 1)
      return dt_error_set(err, DT_ERR_ARG, "the model has %d sampling layers: name the one "
                          "whose output the latent vectors replace", count);
  }
  const dt_shape_t *s = out->from < 0 ? &m->in_shape : &m->layers[out->from].out_shape;
  out->dim = dt_shape_size(s);
  return dt_model_check_tail(m, out->from, err);
}

int latent_generate(dt_model_t *m, const latent_t *lt, int n, dt_rng_t *rng, float *host_z,
                    float *out, dt_error_t *err) {
  if (n > m->capacity)
    return dt_error_set(err, DT_ERR_ARG, "%d samples at once, but the model is prepared for %d",
                        n, m->capacity);
  const size_t nz = (size_t)n * lt->dim;
  for (size_t i = 0; i < nz; i++) host_z[i] = dt_rng_normal(rng);
  dt_device_copy(m->stream, m->acts[lt->from + 1], host_z, nz * sizeof(float), DT_COPY_H2D);
  const float *y = dt_model_forward_from(m, lt->from, n, false, NULL);
  const size_t ny = (size_t)n * dt_model_output_size(m);
  void *view = NULL;
  int rc = dt_device_to_host(m->stream, (void *)y, ny * sizeof(float), out, &view, err);
  if (rc) return rc;
  const float *h = view;
  const bool sigmoid = m->loss == DT_LOSS_BCE_LOGITS;
  const bool tanh_out = m->nrun > 0 && strcmp(m->layers[m->nrun - 1].ops->type, "tanh") == 0;
  for (size_t i = 0; i < ny; i++) {
    float v = sigmoid ? 1.0f / (1.0f + expf(-h[i])) : tanh_out ? 0.5f * (h[i] + 1.0f) : h[i];
    out[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
  }
  return 0;
}
