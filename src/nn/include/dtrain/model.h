/* A model: a stack of layers or a graph of them (Keras' functional API) over one flat
 * parameter buffer and one flat gradient buffer, with activations in an arena sized
 * once for a batch capacity.
 *
 * Graphs. layers[] is in a topological order: every layer's inputs come from the
 * model's input or from layers with smaller indices, so walking layers[0..nlayers) in
 * order visits each node after its inputs (what an exporter needs). Layer i's inputs
 * are layers[i].inputs[0..ninputs) (producer indices, DT_LAYER_MODEL_INPUT for the
 * model's input) with shapes in_shapes[]; its output is acts[i + 1], and the output of
 * producer p is acts[p + 1] (acts[0] for the model's input), see dt_model_input_of. A
 * stack is the graph where layer i takes layer i - 1 (layer 0 the input). The order
 * follows the config wherever the graph allows, so a stack keeps its order and names.
 * The model's output is the last layer run, layers[nrun - 1], unless [model] outputs
 * names several (each a sink or not): then outputs[k] says where output k's values are,
 * and layers folded into a loss (a final softmax) come after the nrun layers forward
 * runs. A model with several inputs ([model] inputs) reads input j from
 * dt_model_input(m, j) (producer index DT_LAYER_MODEL_INPUT - j, see
 * dt_model_act_index); input 0 is acts[0].
 *
 * The buffers and the arena are memory of the model's device, allocated by it, and
 * the layers run on its default stream; the host reads or writes the flat buffers
 * through dt_model_to_host / dt_model_from_host.
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
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"
#include "dtrain/loss.h"
#include "dtrain/rng.h"

enum { DT_MAX_LAYERS = 256 };

/* Called during backward each time the gradients of [begin, end) have been launched:
 * they are final once the event `ready` (recorded on the model's stream after the
 * layer's backward) completes. Whoever reads them waits for it first. */
typedef void (*dt_grads_ready_fn)(void *ctx, size_t begin, size_t end, dt_device_event_t *ready);

/* One of the model's outputs: what its loss sees, and the loss's gradient. */
typedef struct {
  int act;            /* its values are acts[act] (batch, shape) */
  dt_shape_t shape;   /* per sample, what the loss sees */
  dt_loss_kind loss;  /* [model] losses (default [model] loss) */
  float weight;       /* [model] loss_weights (default 1): the total is sum w_k loss_k */
  float *dout;        /* (capacity, shape) dL_k/d(values), filled by the caller */
  const char *name;   /* the layer's name as [model] outputs names it (metrics) */
} dt_model_output_t;

typedef struct {
  dt_device_t *dev;    /* not owned */
  dt_stream_t *stream; /* the device's default stream: forward and backward run on it */
  dt_layer_t *layers;
  int nlayers;
  /* Layers run by forward: all of them, or all but a final softmax/sigmoid that is
   * fused into the cross-entropy loss. */
  int nrun;
  dt_loss_kind loss; /* outputs[0].loss */

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
  /* Several inputs and outputs: in_shapes[0] = in_shape, outputs[0] is the output above
   * (out_shape, loss, dout). */
  int nin, nout;
  dt_shape_t in_shapes[DT_MAX_MODEL_IO];
  dt_model_output_t outputs[DT_MAX_MODEL_IO];

  bool is_graph;    /* some layer names its inputs: the summary shows them */
  struct dt_graph *graph; /* private: the sections' names and inputs as the config wrote them */

  int capacity;     /* largest batch the arena holds */
  /* acts[0] = input (capacity, in), acts[i+1] = output of layer i. The arena plan
   * (dt_model_prepare) lets buffers share memory when their values are no longer needed:
   * after a forward pass, acts[0], the output and every value some backward step reads
   * are intact; an input of a layer whose backward needs neither its input nor its
   * output (ops->backward_ignores_x/y, merges) may already be overwritten. */
  float **acts;     /* (nlayers + nin): then acts[nlayers + j] = input j for j >= 1 */
  float *dout;      /* (capacity, out): dL/d(output), filled by the loss (outputs[0].dout) */
  /* Private to the model: dL/d(acts[a]) during backward (NULL where none), the buffers
   * where a second consumer's part of a gradient goes before it is added (nlayers *
   * DT_MAX_LAYER_INPUTS), and which gradients backward has begun. */
  float **dacts;
  float **dpart;
  bool *dwritten;
  void *arena;
  size_t arena_floats; /* the arena's size in floats (activations, gradients, scratch) */
  bool training;    /* the mode of the last forward, which backward differentiates */
  /* Set before dt_model_prepare when the caller needs dL/d(input) (a GAN's generator
   * step differentiates through the discriminator): backward then also writes it, and
   * dt_model_input_grad returns it; otherwise nothing computes it. */
  bool input_grad;

  dt_grads_ready_fn on_grads_ready;
  void *grads_ready_ctx;
  /* (nlayers) per layer with parameters: recorded when its gradients are final */
  dt_device_event_t **grads_ready;
  float *host[3];           /* host copies for dt_model_to_host where the device needs them */
  float *aux_host;          /* (capacity) host copy of a layer's aux_loss values, if needed */
} dt_model_t;

/* Builds the layers from [model] (loss, outputs) and [layer.1], [layer.2], ... for
 * inputs of in_shape, with their buffers on dev; checks that layers, input and loss fit
 * together. Each [layer.N] may also say activation = relu|... to append that activation
 * layer after it, name = ... (default: type_K, K counting that type in config order) and
 * inputs = name1, name2 (default: the section before; 'input' is the model's input).
 * The graph is checked at build (cycles, unknown or duplicate names, unused outputs,
 * input counts and shapes), every error naming its section. */
int dt_model_build(dt_model_t *m, dt_device_t *dev, dt_config_t *cfg, dt_shape_t in_shape,
                   dt_error_t *err);
/* (After a failed build, dt_model_free releases what was built so far.) */

/* The same for a model with nin inputs of in_shapes, as [model] inputs names them (one
 * input when it is not set); [model] outputs, losses and loss_weights give its outputs.
 * An error names [model] inputs where the counts differ. */
int dt_model_build_multi(dt_model_t *m, dt_device_t *dev, dt_config_t *cfg,
                         const dt_shape_t *in_shapes, int nin, dt_error_t *err);

/* Allocates activations and scratch for batches of up to `capacity` samples. */
int dt_model_prepare(dt_model_t *m, int capacity, dt_error_t *err);

void dt_model_free(dt_model_t *m);

/* Fills every parameter tensor with its initializer, and every state tensor with its
 * starting value, from rng (on the host, then handed to the device). */
int dt_model_init_params(dt_model_t *m, dt_rng_t *rng, dt_error_t *err);

/* The execution context of a pass on the model's device and stream. */
dt_exec_ctx_t dt_model_exec_ctx(const dt_model_t *m, bool training, dt_rng_t *rng);

/* Runs forward on acts[0] (the caller gathers the batch there); returns the output
 * (batch, out) that the loss sees. */
const float *dt_model_forward(dt_model_t *m, int batch, bool training, dt_rng_t *rng);

/* Runs backward from m->dout, filling grad_buf and calling on_grads_ready per layer
 * with parameters, with an event recorded after its backward. Layers run in reverse
 * order, so the ranges come in decreasing buffer order; where an output feeds several
 * layers its gradient is the sum of their parts, complete before its producer's
 * backward runs, so each range is final when reported. */
void dt_model_backward(dt_model_t *m, int batch);

/* Where producer p's values are in acts[]: p + 1 for a layer or the first input,
 * nlayers + j for input j >= 1. */
static inline int dt_model_act_index(const dt_model_t *m, int p) {
  return p >= DT_LAYER_MODEL_INPUT ? p + 1 : m->nlayers + (DT_LAYER_MODEL_INPUT - p);
}

/* The values layer i reads as its input k. */
static inline float *dt_model_input_of(const dt_model_t *m, int i, int k) {
  return m->acts[dt_model_act_index(m, m->layers[i].inputs[k])];
}

/* Input j's buffer (capacity, in_shapes[j]) and output k's values (batch, outputs[k].shape)
 * after a forward. */
float *dt_model_input(const dt_model_t *m, int j);
const float *dt_model_output(const dt_model_t *m, int k);

/* Copies a batch of samples x (batch, dt_model_input_size) into the inputs: each sample
 * is the inputs' values one after another (input 0 first). */
void dt_model_set_inputs(dt_model_t *m, const float *x, int batch);

/* dL/d(input) (batch, in) of the last backward, with input_grad set; else NULL. */
const float *dt_model_input_grad(const dt_model_t *m);

/* Loss terms that layers add (ops->aux_loss, e.g. a VAE's KL divergence). Whether the
 * model has any, and after a forward pass of `batch` samples their sum over the layers:
 * *weighted of the batch means times each layer's weight (what the loss adds, and what
 * backward differentiates), *raw of the batch means without the weights (0 and 0 when
 * no layer adds a term). Waits for the forward's work to read the values. */
bool dt_model_has_aux_loss(const dt_model_t *m);
int dt_model_aux_loss(dt_model_t *m, int batch, double *weighted, double *raw, dt_error_t *err);

/* Running the part of a model after one layer: a VAE's decoder on latent vectors
 * (after its sampling layer), or a whole generator on its input (from =
 * DT_LAYER_MODEL_INPUT). dt_model_check_tail checks that every layer after `from` in the
 * order depends on the model's input only through layer from's output (an error naming
 * the layer that does not: a skip connection around it); dt_model_forward_from then runs
 * them on acts[from + 1], which the caller has filled for `batch` samples, and returns
 * the output as dt_model_forward does. */
int dt_model_check_tail(const dt_model_t *m, int from, dt_error_t *err);
const float *dt_model_forward_from(dt_model_t *m, int from, int batch, bool training,
                                   dt_rng_t *rng);

/* All inputs' values per sample (the sum over inputs). */
size_t dt_model_input_size(const dt_model_t *m);
size_t dt_model_output_size(const dt_model_t *m);

/* The model's flat buffers as host memory, for whoever reads or writes them on the
 * host: checkpoints, the PS client, TensorBoard, metrics, best weights. Nothing else
 * touches param_buf, grad_buf or state_buf directly outside nn/.
 * dt_model_to_host brings buffer `which` to host memory (all num_params or num_states
 * floats), once the work on the model's stream is done, and points *host at it; after
 * writing into that memory, dt_model_from_host hands it back to the device. Both go
 * through the device (dt_device_to_host): on the CPU backend the buffers are host
 * memory and neither copies anything. */
typedef enum { DT_MODEL_PARAMS, DT_MODEL_GRADS, DT_MODEL_STATES } dt_model_buffer;
int dt_model_to_host(dt_model_t *m, dt_model_buffer which, float **host, dt_error_t *err);
int dt_model_from_host(dt_model_t *m, dt_model_buffer which, dt_error_t *err);

/* A multi-line summary like Keras' model.summary(): layer, output shape, params; for
 * graph models also each layer's inputs; once prepared, the arena's size. */
size_t dt_model_summary(const dt_model_t *m, char *buf, size_t cap);

#endif
