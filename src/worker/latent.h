/* Making samples from a generative model's latent space: a VAE's decoder (the layers
 * after its sampling layer) or a GAN's generator (a whole model whose input is the
 * latent vector), run on z ~ N(0, 1). Shared by the trainer's picture of prior samples
 * and by `dtrain-worker generate`. */
#ifndef DTRAIN_WORKER_LATENT_H
#define DTRAIN_WORKER_LATENT_H

#include <stddef.h>

#include "dtrain/error.h"
#include "dtrain/model.h"
#include "dtrain/rng.h"

typedef struct {
  int from;      /* the layer whose output is the latent vector, or DT_LAYER_MODEL_INPUT */
  size_t dim;    /* values per latent vector */
} latent_t;

/* Where the latent vectors go in m: after the layer named `layer` if not NULL, else
 * after the model's only sampling layer, else (no sampling layer) the model's input.
 * Errors: an unknown name, several sampling layers without a name, and layers after
 * the place that also read the model's input (dt_model_check_tail). */
int latent_find(const dt_model_t *m, const char *layer, latent_t *out, dt_error_t *err);

/* Draws n latent vectors from N(0, 1) (rng, in order), runs the layers after the latent
 * place (prepared for n samples or more) in evaluation mode and writes the outputs to
 * host memory out (n, output size) in [0, 1]: through the sigmoid that a
 * binary_crossentropy loss fuses, as (y + 1) / 2 after a final tanh, otherwise clipped.
 * host_z: scratch of n * dim floats. */
int latent_generate(dt_model_t *m, const latent_t *lt, int n, dt_rng_t *rng, float *host_z,
                    float *out, dt_error_t *err);

#endif
