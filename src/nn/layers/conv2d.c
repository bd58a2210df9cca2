/* 2-d convolution over (height, width, channels) samples, as Keras' Conv2D: kernel
 * (kh, kw, in_channels, filters), valid or same padding, strides, dilation. The work
 * is the device's convolution (conv.c). */
#include "conv.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  return dt_conv_build(l, cfg, section, 2, false, err);
}

const dt_layer_ops_t dt_layer_conv2d = {.type = "conv2d",
                                        .build = build,
                                        .scratch_floats = dt_conv_scratch_floats,
                                        .forward = dt_conv_forward,
                                        .backward = dt_conv_backward};
