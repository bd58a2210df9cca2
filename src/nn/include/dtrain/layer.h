/* The layer interface.
 *
 * A layer reads its hyperparameters from its config section, computes its output
 * shape from its input shape and declares its parameter tensors. It owns no
 * parameter memory: the model places every declared tensor in one flat parameter
 * buffer (and the gradient at the same offset of one flat gradient buffer) and
 * hands the layer pointers into them. Activations and per-batch scratch come from
 * the model's arena, sized once for the largest batch, so forward and backward
 * never allocate. All of that memory is the device's: a layer computes on it only
 * through the device's kernels and GEMMs (dtrain/device.h), launched on the stream of
 * its execution context, and never reads or writes it on the host.
 *
 * Data are batch-major: x is (batch, in_size), y is (batch, out_size), where the
 * sizes are the products of the per-sample shapes.
 *
 * Inputs. Most layers take one input; merge layers (add, concatenate, ...) take several
 * and implement forward_multi/backward_multi instead of forward/backward. Which layer
 * feeds which is the model's business (dtrain/model.h): it records, in every layer,
 * its inputs (the indices of the producing layers in the model's topological order, or
 * DT_LAYER_MODEL_INPUT) and their shapes, before calling build. */
#ifndef DTRAIN_LAYER_H
#define DTRAIN_LAYER_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/rng.h"
#include "dtrain/tensor.h"

/* 8 parameters: a Bidirectional LSTM holds two (kernel, recurrent_kernel, bias) sets. */
enum { DT_MAX_LAYER_PARAMS = 8, DT_MAX_LAYER_STATES = 4 };

/* At most this many inputs per layer (a concatenate of 8 branches). */
enum { DT_MAX_LAYER_INPUTS = 8 };
/* The producer index of an input that is the model's input (not a layer's output); a
 * model with several inputs ([model] inputs) has input j at DT_LAYER_MODEL_INPUT - j. */
enum { DT_LAYER_MODEL_INPUT = -1 };
/* At most this many model inputs and outputs. */
enum { DT_MAX_MODEL_IO = 8 };

/* Per-call context of a forward or backward pass. */
typedef struct {
  dt_device_t *dev;    /* where the memory lives and the kernels run */
  dt_stream_t *stream; /* the stream the layer launches its work on */
  dt_rng_t *rng;       /* for stochastic layers in forward (the model's own stream of
                        * numbers); NULL in backward, which draws nothing */
  bool training;       /* dropout active, batch statistics...; in backward, the mode of
                        * the forward pass being differentiated */
} dt_exec_ctx_t;

typedef struct dt_layer dt_layer_t;

typedef struct {
  const char *type; /* the config name, e.g. "dense" */
  /* Reads keys from cfg's section, checks in_shape, sets out_shape, declares params
   * with dt_layer_declare_param. May allocate l->priv (freed with free()). */
  int (*build)(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err);
  /* Floats of scratch the layer needs on dev for a batch of the given size (optional). */
  size_t (*scratch_floats)(const dt_layer_t *l, const dt_device_t *dev, int batch);
  /* y = f(x) for `batch` samples. */
  void (*forward)(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x, float *y);
  /* Given dy = dL/dy, writes (overwrites) the parameter gradients and, if dx is not
   * NULL, dx = dL/dx. x and y are the values of the last forward pass. */
  void (*backward)(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                   const float *y, const float *dy, float *dx);
  /* Sets initial values that one initializer per tensor cannot express (an orthogonal
   * recurrent kernel, the LSTM's forget-gate bias of one); optional. Called by
   * dt_model_init_params after every declared initializer has run, in layer order,
   * with w[i] the host memory of parameter tensor i (the values it is to change). */
  void (*init_params)(dt_layer_t *l, float *const *w, dt_rng_t *rng);

  /* Multi-input layers (merges). max_inputs > 1 marks one: it takes min_inputs to
   * max_inputs inputs (l->ninputs of them, shapes in l->in_shapes) and the model calls
   * forward_multi/backward_multi, never forward/backward. xs[k] is input k (batch,
   * in_size(k)); in backward, dxs[k] is where dL/dx_k goes (overwritten), or NULL where
   * nobody needs it (an input that is the model's input). Single-input layers leave
   * these zero. */
  int min_inputs, max_inputs;
  void (*forward_multi)(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                        const float *const *xs, float *y);
  void (*backward_multi)(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch,
                         const float *const *xs, const float *y, const float *dy,
                         float *const *dxs);
  /* Backward reads neither the inputs (x, xs) nor the output (y): the model may then
   * reuse their memory sooner (its arena plan). Both false (the safe default): backward
   * may read both. */
  bool backward_ignores_x, backward_ignores_y;
  /* A term the layer adds to the model's loss (Keras' add_loss), e.g. the KL divergence
   * of a VAE's sampling layer; optional. After a forward pass of `batch` samples it
   * returns device memory holding the term's value for each sample (batch floats, left by
   * that forward) and sets *weight, the factor the loss takes the batch mean with. The
   * layer's own backward adds the gradient of weight * mean(term) to the gradients it
   * writes, so the model's backward needs nothing more; dt_model_aux_loss reads the
   * values for the trainer to add to the loss and report. */
  const float *(*aux_loss)(const dt_layer_t *l, int batch, float *weight);
} dt_layer_ops_t;

struct dt_layer {
  const dt_layer_ops_t *ops;
  char name[DT_NAME_MAX / 2]; /* "dense_1"; half of a param name, which adds a suffix */
  const char *section;        /* the config section it came from (owned by the config) */
  dt_shape_t in_shape, out_shape; /* in_shape = in_shapes[0] */
  /* Where the inputs come from, set by the model before build: input k is the output
   * of layer inputs[k] of the model (an earlier index: layers are in topological
   * order), or the model's input where inputs[k] == DT_LAYER_MODEL_INPUT; its
   * per-sample shape is in_shapes[k]. A single-input layer has ninputs == 1. */
  int ninputs;
  int inputs[DT_MAX_LAYER_INPUTS];
  dt_shape_t in_shapes[DT_MAX_LAYER_INPUTS];
  const char *input_names[DT_MAX_LAYER_INPUTS]; /* as the config names them, for messages */
  int nparams;
  dt_param_info_t param_decl[DT_MAX_LAYER_PARAMS]; /* filled by build, placed by the model */
  float *w[DT_MAX_LAYER_PARAMS];                   /* parameter views into the flat buffer */
  float *g[DT_MAX_LAYER_PARAMS];                   /* gradient views */
  /* Non-trainable state (batch norm's moving averages): placed by the model in its flat
   * state buffer, saved in checkpoints, never touched by the optimizer. */
  int nstates;
  dt_param_info_t state_decl[DT_MAX_LAYER_STATES];
  float *s[DT_MAX_LAYER_STATES];
  float *scratch;                                  /* scratch_floats(capacity) floats */
  void *priv;                                      /* layer-specific settings */
};

/* Declares parameter tensor number l->nparams ("kernel", "bias", ...). */
void dt_layer_declare_param(dt_layer_t *l, const char *suffix, dt_shape_t shape,
                            dt_init_kind init, int fan_in, int fan_out, bool decay);

/* Declares state tensor number l->nstates ("moving_mean", ...), set to init (zeros or
 * ones) by dt_model_init_params. */
void dt_layer_declare_state(dt_layer_t *l, const char *suffix, dt_shape_t shape,
                            dt_init_kind init);

/* Reads "kernel_initializer"-style keys with a default. */
int dt_layer_get_init(dt_config_t *cfg, const char *section, const char *key, dt_init_kind def,
                      dt_init_kind *out, dt_error_t *err);

/* The registry of layer types. */
const dt_layer_ops_t *dt_layer_find(const char *type);
/* "dense, relu, ..." into buf, for error messages; returns buf. */
const char *dt_layer_type_list(char *buf, size_t cap);

#endif
