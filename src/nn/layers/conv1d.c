/* 1-d convolution over (steps, features) samples, as Keras' Conv1D: kernel
 * (k, features, filters), valid, same or causal padding, strides, dilation. A (T, F)
 * sample is a (1, T, F) image, so this is the 2-d convolution with a (1, k) kernel. */
#include "conv.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  return dt_conv_build(l, cfg, section, 1, false, err);
}

const dt_layer_ops_t dt_layer_conv1d = {.type = "conv1d",
                                        .build = build,
                                        .scratch_floats = dt_conv_scratch_floats,
                                        .forward = dt_conv_forward,
                                        .backward = dt_conv_backward};
