/* Transposed 2-d convolution, as Keras' Conv2DTranspose: kernel
 * (kh, kw, filters, in_channels), output extent n * s (same) or n * s + max(k - s, 0)
 * (valid). It is the adjoint of the convolution from its output to its input, so its
 * forward pass is that convolution's input gradient (GEMM then col2im) and its input
 * gradient is that convolution's forward pass (im2col then GEMM). */
#include "conv.h"

static int build(dt_layer_t *l, dt_config_t *cfg, const char *section, dt_error_t *err) {
  return dt_conv_build(l, cfg, section, 2, true, err);
}

const dt_layer_ops_t dt_layer_conv2d_transpose = {.type = "conv2d_transpose",
                                                  .build = build,
                                                  .scratch_floats = dt_conv_scratch_floats,
                                                  .forward = dt_conv_forward,
                                                  .backward = dt_conv_backward};
