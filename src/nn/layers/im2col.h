/* Convolution geometry, the im2col / col2im kernels, and the GEMM-based forward and
 * backward passes shared by conv1d, conv2d and conv2d_transpose (private to libdtrain).
 *
 * Data are channels-last, so one output position of a convolution reads
 * kh * kw vectors of `ic` contiguous channels. im2col lays them side by side: row r of
 * the column matrix is output position r of the batch (batch-major, then row, then
 * column) and holds kh * kw * ic values in the order of a Keras kernel's first three
 * axes, so the convolution is one GEMM (rows, kh*kw*ic) x (kh*kw*ic, filters). The
 * batch is processed in chunks of rows so that the column matrix stays in cache and
 * the scratch it needs does not grow with the batch. */
#ifndef DTRAIN_LAYERS_IM2COL_H
#define DTRAIN_LAYERS_IM2COL_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/config.h"
#include "dtrain/error.h"
#include "dtrain/layer.h"

/* A 2-d convolution from (ih, iw, ic) images to (oh, ow, oc) images. A 1-d convolution
 * is the case ih = kh = 1 (a (T, F) sample is a (1, T, F) image in memory). */
typedef struct {
  int ih, iw, ic; /* input image */
  int oh, ow, oc; /* output image */
  int kh, kw;     /* kernel extent (undilated) */
  int sh, sw;     /* strides */
  int dh, dw;     /* dilations */
  int ph, pw;     /* zero padding before the first row / column; after is implied */
} dt_conv_geom_t;

/* Width of a column-matrix row: kh * kw * ic. */
size_t dt_conv_cols(const dt_conv_geom_t *g);

/* Rows row0 .. row0 + nrows - 1 of the column matrix of the batch x (batch, ih, iw, ic)
 * into cols (nrows, kh * kw * ic); taps in the padding are zeros. */
void dt_im2col(const dt_conv_geom_t *g, const float *x, size_t row0, int nrows, float *cols);

/* The adjoint of dt_im2col: adds every value of cols (nrows, kh * kw * ic) into the
 * input position it was read from, in x (batch, ih, iw, ic); taps in the padding are
 * dropped. */
void dt_col2im_add(const dt_conv_geom_t *g, const float *cols, size_t row0, int nrows, float *x);

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
 * transposed convolution, g describes the convolution it is the adjoint of: from the
 * layer's output (g.ih, g.iw, g.ic = filters) to its input (g.oh, g.ow, g.oc). */
typedef struct {
  dt_conv_geom_t g;
  bool transpose;
  bool use_bias;
  bool identity;  /* 1x1 kernel, stride 1, no padding: the column matrix is the input */
  bool fast;      /* the AVX-512 kernels run the GEMMs they can (im2col.c) */
  int chunk_rows; /* column-matrix rows per GEMM */
} dt_conv_t;

/* Reads filters, kernel_size, strides, padding, dilation_rate, use_bias and the
 * initializers from `section` for a convolution over `dims` (1 or 2) spatial axes, checks
 * l->in_shape, sets l->out_shape, declares the kernel and bias and sets l->priv. */
int dt_conv_build(dt_layer_t *l, dt_config_t *cfg, const char *section, int dims,
                  bool transpose, dt_error_t *err);

size_t dt_conv_scratch_floats(const dt_layer_t *l, int batch);
void dt_conv_forward(dt_layer_t *l, const dt_fwd_ctx_t *ctx, int batch, const float *x, float *y);
void dt_conv_backward(dt_layer_t *l, int batch, const float *x, const float *y, const float *dy,
                      float *dx);

#endif
