/* Optimizers over ranges of the flat parameter vector.
 *
 * The state (one or two moment buffers the size of the parameter vector, and the
 * step count) is flat too, so a parameter server can apply the same code to its
 * range [begin, end) and a checkpoint saves it with a few writes.
 *
 * Update rules (g includes weight decay: g += weight_decay * w for tensors marked
 * decay, i.e. kernels, not biases):
 *   sgd:      buf = momentum*buf + g; w -= lr*(nesterov ? g + momentum*buf : buf)
 *             (PyTorch's form; plain SGD when momentum = 0)
 *   adam:     m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   rmsprop:  v = rho v + (1-rho) g^2; w -= lr g / (sqrt(v) + eps)
 *   adadelta: Eg = rho Eg + (1-rho) g^2; d = sqrt(Ed + eps) / sqrt(Eg + eps) * g;
 *             Ed = rho Ed + (1-rho) d^2; w -= lr d
 * Defaults follow Keras: eps 1e-7, rho 0.9 (rmsprop) / 0.95 (adadelta), b1 0.9, b2 0.999. */
#ifndef DTRAIN_OPTIM_H
#define DTRAIN_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/parallel.h"
#include "dtrain/tensor.h"

typedef enum { DT_OPT_SGD, DT_OPT_ADAM, DT_OPT_RMSPROP, DT_OPT_ADADELTA } dt_optim_kind;

extern const char *const dt_optim_names[];

typedef struct {
  dt_optim_kind kind;
  double momentum; /* sgd */
  bool nesterov;   /* sgd */
  double beta1, beta2;
  double rho;
  double eps;
  double weight_decay;
} dt_optim_config_t;

typedef struct {
  dt_optim_config_t cfg;
  size_t n;        /* parameters covered */
  float *moment1;  /* sgd momentum buffer / adam m / rmsprop v / adadelta Eg, or NULL */
  float *moment2;  /* adam v / adadelta Ed, or NULL */
  int64_t step;    /* completed steps; adam's bias correction uses step after begin_step */
  /* Threads for dt_optim_update (zero after init: the calling thread only). The worker
   * hands in its device's (dt_device_parallel); every element's update is independent
   * of the others, so the results do not depend on the threads. */
  dt_parallel_t parallel;
} dt_optim_t;

/* Defaults for a kind (Keras' values). */
dt_optim_config_t dt_optim_defaults(dt_optim_kind kind);

/* Reads [optimizer]: type, momentum, nesterov, beta1, beta2, rho, epsilon, weight_decay. */
int dt_optim_config_read(dt_config_t *cfg, dt_optim_config_t *out, dt_error_t *err);

int dt_optim_init(dt_optim_t *o, const dt_optim_config_t *cfg, size_t n, dt_error_t *err);
void dt_optim_free(dt_optim_t *o);

/* Number of moment buffers the kind keeps (0, 1 or 2). */
int dt_optim_num_moments(const dt_optim_t *o);

/* Starts a step (increments the step count); then update the ranges. */
void dt_optim_begin_step(dt_optim_t *o);

/* Applies one step to params[begin, end) with grads[begin, end). tensors lists the
 * parameter tensors (offsets into the same vector) so weight decay touches kernels only. */
void dt_optim_update(dt_optim_t *o, float *params, const float *grads, size_t begin, size_t end,
                     float lr, const dt_param_info_t *tensors, int ntensors);

#endif
