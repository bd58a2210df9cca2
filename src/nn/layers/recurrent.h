/* The recurrent cells shared by the simple_rnn, lstm, gru and bidirectional layers
 * (private to the layers folder).
 *
 * A cell reads a (T, F) sequence per sample and runs one recurrence over it, forward
 * in time or, for the backward half of a bidirectional layer, from the last step to
 * the first. Its parameters are Keras' fused tensors: kernel (F, G * units),
 * recurrent_kernel (units, G * units) and bias (G * units), or (2, 3 * units) for the
 * GRU (input and recurrent bias, Keras' reset_after = true form), with G = 1
 * (SimpleRNN), 4 (LSTM gates i, f, c, o) or 3 (GRU gates z, r, h).
 *
 * Inside its scratch a cell keeps every sequence time-major, (T, batch, ...), so that
 * one step's rows are contiguous: the input projection of all steps is one GEMM
 * (T * batch, F) x (F, G * units), each step adds one GEMM of the previous hidden
 * state, and in backward the kernel, recurrent-kernel and input gradients are again
 * one GEMM each over all steps. Everything runs on the device's stream: the GEMMs, one
 * step kernel per time step, and the moves between batch-major and time-major. */
#ifndef DTRAIN_LAYERS_RECURRENT_H
#define DTRAIN_LAYERS_RECURRENT_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/device.h"
#include "dtrain/layer.h"

/* dt_rnn_kind (simple, LSTM, GRU) is the device's, whose step kernels take it. */

typedef struct {
  dt_rnn_kind kind;
  int steps, features, units;
  int gates;             /* 1, 4 or 3: the kernel has gates * units columns */
  bool return_sequences; /* output (T, units) instead of the last step's (units) */
  bool reverse;          /* run from the last time step to the first */
  bool orthogonal;       /* recurrent_initializer = orthogonal (filled by dt_rnn_cell_init) */
  bool forget_bias;      /* LSTM unit_forget_bias: the f block of the bias starts at 1 */
  int param0;            /* l->w[param0] is the kernel; recurrent kernel and bias follow */
} dt_rnn_cell_t;

/* Where a cell's output goes inside the layer's output: each (sample, step) row of y
 * has `width` floats and the cell owns [offset, offset + units) of it; `accumulate`
 * adds to what is there (bidirectional merge_mode = sum) instead of overwriting. The
 * gradient dy is read from the same place. */
typedef struct {
  int width, offset;
  bool accumulate;
} dt_rnn_out_t;

/* Reads the cell's keys from `section` (units, return_sequences, initializers,
 * unit_forget_bias, reset_after), checks that the layer's input is (T, F) and declares
 * the cell's three parameters, named prefix + "kernel" and so on. Does not set the
 * layer's output shape. `what` names the layer type in messages. */
int dt_rnn_cell_build(dt_rnn_cell_t *c, dt_layer_t *l, dt_config_t *cfg, const char *section,
                      dt_rnn_kind kind, const char *what, const char *prefix, bool reverse,
                      dt_error_t *err);

/* Floats of scratch one cell needs for a batch of `batch` samples. */
size_t dt_rnn_cell_scratch_floats(const dt_rnn_cell_t *c, int batch);

/* The initial values the declared initializers cannot express: an orthogonal recurrent
 * kernel and the LSTM's forget-gate bias of one, into the host memory w[i] of the
 * layer's parameter tensors. */
void dt_rnn_cell_init(const dt_rnn_cell_t *c, float *const *w, dt_rng_t *rng);

/* x is (batch, T, F); writes the cell's part of y and keeps what backward needs in
 * scratch; runs on stream st. */
void dt_rnn_cell_forward(const dt_rnn_cell_t *c, dt_layer_t *l, dt_stream_t *st,
                         float *scratch, int batch, const float *x, float *y, dt_rnn_out_t out);

/* From dy (read like y), overwrites the cell's parameter gradients and, if dx is not
 * NULL, writes (or with dx_accumulate adds) dL/dx (batch, T, F). Uses only what the
 * last forward left in scratch, so it may be called more than once. */
void dt_rnn_cell_backward(const dt_rnn_cell_t *c, dt_layer_t *l, dt_stream_t *st,
                          float *scratch, int batch, const float *dy, dt_rnn_out_t out,
                          float *dx, bool dx_accumulate);

/* The ops of a layer that is one cell (simple_rnn, lstm, gru): build, scratch,
 * forward, backward and init for the layer whose priv is a dt_rnn_cell_t. */
int dt_rnn_layer_build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_rnn_kind kind,
                       dt_error_t *err);
size_t dt_rnn_layer_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch);
void dt_rnn_layer_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                          float *y);
void dt_rnn_layer_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                           const float *y, const float *dy, float *dx);
void dt_rnn_layer_init(dt_layer_t *l, float *const *w, dt_rng_t *rng);

/* The config name of a cell kind: "simple_rnn", "lstm", "gru". */
const char *dt_rnn_kind_name(dt_rnn_kind kind);

#endif
