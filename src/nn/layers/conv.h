/* The convolution layers' settings, read from their config sections, and the forward
 * and backward passes shared by conv1d, conv2d and conv2d_transpose (private to the
 * layers folder). The work itself is the device's convolution (dt_conv_geom_t and
 * dt_device_conv_forward/backward in dtrain/device.h: on the CPU, im2col and GEMMs in
 * cache-sized chunks). Pooling layers share the geometry and its helpers. */
#ifndef DTRAIN_LAYERS_CONV_H
#define DTRAIN_LAYERS_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/config.h"
#include "dtrain/device.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"

/* The padding mode of a convolution or pooling layer. */
typedef enum { DT_PAD_VALID, DT_PAD_SAME, DT_PAD_CAUSAL } dt_pad_kind;

/* Output extent and padding before, along one axis, as Keras computes them for input
 * extent n, kernel extent k (already dilated) and stride s. Returns the output extent,
 * < 1 when the kernel does not fit (valid padding). */
int dt_conv_out_extent(int n, int k, int s, dt_pad_kind pad, int *pad_before);

/* Reads `key` as one positive integer or a list of `dims` of them ("5" or "5,3") into
 * out[0..dims-1]; a missing key gives def in every entry. */
int dt_conv_get_pair(dt_config_t *cfg, const char *section, const char *key, int def, int dims,
                     int *out, dt_error_t *err);

/* A convolution layer's settings (l->priv of conv1d, conv2d and conv2d_transpose). For a
 * transposed convolution, desc.g describes the convolution it is the adjoint of: from
 * the layer's output (g.ih, g.iw, g.ic = filters) to its input (g.oh, g.ow, g.oc). */
typedef struct {
  dt_conv_desc_t desc;
  bool use_bias;
} dt_conv_t;

/* Reads filters, kernel_size, strides, padding, dilation_rate, use_bias and the
 * initializers from `section` for a convolution over `dims` (1 or 2) spatial axes, checks
 * l->in_shape, sets l->out_shape, declares the kernel and bias and sets l->priv. */
int dt_conv_build(dt_layer_t *l, dt_config_t *cfg, const char *section, int dims,
                  bool transpose, dt_error_t *err);

size_t dt_conv_scratch_floats(const dt_layer_t *l, const dt_device_t *dev, int batch);
void dt_conv_forward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                     float *y);
void dt_conv_backward(dt_layer_t *l, const dt_exec_ctx_t *ctx, int batch, const float *x,
                      const float *y, const float *dy, float *dx);

#endif
