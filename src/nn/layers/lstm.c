/* LSTM (Keras' LSTM: fused kernel, recurrent_kernel and bias, gates i, f, c, o; tanh
 * cell, sigmoid gates, unit_forget_bias) over a (T, F) sequence; the cell itself is in
 * recurrent.c. */
#include "recurrent.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  return dt_rnn_layer_build(l, cfg, section, DT_RNN_LSTM, err);
}

const dt_layer_ops_t dt_layer_lstm = {.type = "lstm",
                                      .build = build,
                                      .scratch_floats = dt_rnn_layer_scratch_floats,
                                      .forward = dt_rnn_layer_forward,
                                      .backward = dt_rnn_layer_backward,
                                      .init_params = dt_rnn_layer_init};
