/* A sequential model: a stack of layers over one flat parameter buffer and one flat
 * gradient buffer, with activations in an arena sized once for a batch capacity.
 *
 * Parameters are laid out in layer order, so reverse layer order during backward
 * walks the buffer from the end to the start: a bucketed all-reduce can start on
 * the tail while backward still works on the head (see on_grads_ready). */
#ifndef DTRAIN_MODEL_H
#define DTRAIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/loss.h"
#include "dtrain/rng.h"

enum { DT_MAX_LAYERS = 256 };

/* Called during backward each time the gradients of [begin, end) are final. */
typedef void (*dt_grads_ready_fn)(void *ctx, size_t begin, size_t end);

typedef struct {
  dt_layer_t *layers;
  int nlayers;
  /* Layers run by forward: all of them, or all but a final softmax/sigmoid that is
   * fused into the cross-entropy loss. */
  int nrun;
  dt_loss_kind loss;

  dt_param_info_t *params; /* every parameter tensor, in buffer order */
  int nparams;
  size_t num_params;
  float *param_buf; /* (num_params) */
  float *grad_buf;  /* (num_params) */

  dt_param_info_t *states; /* every non-trainable state tensor, in buffer order */
  int nstates;
  size_t num_states;
  float *state_buf; /* (num_states) moving averages and the like; not optimized */

  dt_shape_t in_shape, out_shape; /* per sample; out_shape is what the loss sees */

  int capacity;     /* largest batch the arena holds */
  float **acts;     /* acts[0] = input (capacity, in), acts[i+1] = output of layer i */
  float *dout;      /* (capacity, out): dL/d(output), filled by the loss */
  float *dbuf[2];   /* ping-pong buffers for dL/d(activation) during backward */
  void *arena;

  dt_grads_ready_fn on_grads_ready;
  void *grads_ready_ctx;
} dt_model_t;

/* Builds the layers from [model] (loss) and [layer.1], [layer.2], ... for inputs of
 * in_shape; checks that layers, input and loss fit together. Each [layer.N] may also
 * say activation = relu|... to append that activation layer after it. */
int dt_model_build(dt_model_t *m, dt_config_t *cfg, dt_shape_t in_shape, dt_error_t *err);
/* (After a failed build, dt_model_free releases what was built so far.) */

/* Allocates activations and scratch for batches of up to `capacity` samples. */
int dt_model_prepare(dt_model_t *m, int capacity, dt_error_t *err);

void dt_model_free(dt_model_t *m);

/* Fills every parameter tensor with its initializer, from rng. */
void dt_model_init_params(dt_model_t *m, dt_rng_t *rng);

/* Runs forward on acts[0] (the caller gathers the batch there); returns the output
 * (batch, out) that the loss sees. */
const float *dt_model_forward(dt_model_t *m, int batch, bool training, dt_rng_t *rng);

/* Runs backward from m->dout, filling grad_buf and calling on_grads_ready per layer. */
void dt_model_backward(dt_model_t *m, int batch);

size_t dt_model_input_size(const dt_model_t *m);
size_t dt_model_output_size(const dt_model_t *m);

/* The model's flat buffers as host memory, for whoever reads or writes them on the
 * host: checkpoints, the PS client, TensorBoard, metrics, best weights. Nothing else
 * touches param_buf, grad_buf or state_buf directly outside nn/.
 * dt_model_to_host brings buffer `which` to host memory (all num_params or num_states
 * floats) and points *host at it; after writing into that memory, dt_model_from_host
 * hands it back to the device. On the CPU backend the buffers are host memory: both
 * copy nothing. */
typedef enum { DT_MODEL_PARAMS, DT_MODEL_GRADS, DT_MODEL_STATES } dt_model_buffer;
int dt_model_to_host(dt_model_t *m, dt_model_buffer which, float **host, dt_error_t *err);
int dt_model_from_host(dt_model_t *m, dt_model_buffer which, dt_error_t *err);

/* A multi-line summary like Keras' model.summary(): layer, output shape, params. */
size_t dt_model_summary(const dt_model_t *m, char *buf, size_t cap);

#endif
