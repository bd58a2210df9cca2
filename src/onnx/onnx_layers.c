/* Each dtrain layer type as ONNX operators (opset 17). dtrain's data are channels-last
 * and batch-major: (batch, H, W, C) images, (batch, T, F) sequences. ONNX's convolution,
 * pooling and recurrent operators want channels-first (N, C, H, W) images and
 * time-major (T, N, F) sequences, so those layers are wrapped in Transpose nodes
 * (ONNX Runtime's optimizer cancels the pairs between adjacent layers). Kernels are
 * rearranged into ONNX's layouts here, once, from Keras' (which dtrain uses). */
#include "onnx_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/layer_info.h"

/* Transpose with a permutation. */
static const char *transpose(ox_graph_t *g, const char *in, const int64_t *perm, int n) {
  ox_node_t *node;
  const char *out = ox_unary(g, "Transpose", in, &node);
  ox_attr_ints(g, node, "perm", perm, n);
  return out;
}

/* Reshape to (batch, dims...): 0 keeps the batch dimension as it is. */
static const char *reshape_to(ox_graph_t *g, const char *in, const dt_shape_t *s) {
  int64_t shape[DT_MAX_DIMS + 1] = {0};
  for (int i = 0; i < s->ndim; i++) shape[i + 1] = s->dims[i];
  return ox_binary(g, "Reshape", in, ox_const_ints(g, "shape", shape, s->ndim + 1), NULL);
}

/* Channels-last (N, spatial..., C) to channels-first (N, C, spatial...) and back, for a
 * value with `spatial` spatial axes. */
static const char *to_channels_first(ox_graph_t *g, const char *in, int spatial) {
  static const int64_t p1[] = {0, 2, 1}, p2[] = {0, 3, 1, 2};
  return spatial == 1 ? transpose(g, in, p1, 3) : transpose(g, in, p2, 4);
}

static const char *to_channels_last(ox_graph_t *g, const char *in, int spatial) {
  static const int64_t p1[] = {0, 2, 1}, p2[] = {0, 2, 3, 1};
  return spatial == 1 ? transpose(g, in, p1, 3) : transpose(g, in, p2, 4);
}

/* Padding after the last row (column) that gives output extent o from input extent n,
 * effective kernel extent k, stride s and padding before pb: whatever the last window
 * needs beyond the input, none when the input has rows to spare (valid padding drops
 * them, as ONNX's floor does). */
static int64_t pad_after(int n, int k, int s, int pb, int o) {
  const int need = (o - 1) * s + k - n - pb;
  return need > 0 ? need : 0;
}

/* The spatial attributes of a convolution or pooling node over `spatial` axes (1: the
 * width axis of the geometry only). */
static void spatial_attrs(ox_graph_t *g, ox_node_t *n, const dt_conv_geom_t *c, int spatial,
                          bool dilations) {
  const int ekh = (c->kh - 1) * c->dh + 1, ekw = (c->kw - 1) * c->dw + 1;
  const int64_t peh = pad_after(c->ih, ekh, c->sh, c->ph, c->oh);
  const int64_t pew = pad_after(c->iw, ekw, c->sw, c->pw, c->ow);
  if (spatial == 1) {
    const int64_t k[] = {c->kw}, st[] = {c->sw}, d[] = {c->dw}, p[] = {c->pw, pew};
    ox_attr_ints(g, n, "kernel_shape", k, 1);
    ox_attr_ints(g, n, "strides", st, 1);
    if (dilations) ox_attr_ints(g, n, "dilations", d, 1);
    ox_attr_ints(g, n, "pads", p, 2);
  } else {
    const int64_t k[] = {c->kh, c->kw}, st[] = {c->sh, c->sw}, d[] = {c->dh, c->dw},
                  p[] = {c->ph, c->pw, peh, pew};
    ox_attr_ints(g, n, "kernel_shape", k, 2);
    ox_attr_ints(g, n, "strides", st, 2);
    if (dilations) ox_attr_ints(g, n, "dilations", d, 2);
    ox_attr_ints(g, n, "pads", p, 4);
  }
}

/* ---- dense ---- */

static const char *dense(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                         const char *in) {
  const dt_shape_t *ks = &l->param_decl[0].shape; /* (in, units) */
  const int64_t kd[2] = {ks->dims[0], ks->dims[1]};
  const char *k = ox_const_float(g, "kernel", kd, 2, w[0]);
  const bool time_distributed = l->out_shape.ndim > 1;
  if (!time_distributed) {
    /* Every input is flattened to (N, in). */
    if (l->in_shape.ndim > 1) {
      ox_node_t *f;
      in = ox_unary(g, "Flatten", in, &f);
      ox_attr_int(g, f, "axis", 1);
    }
    if (l->nparams < 2) return ox_binary(g, "MatMul", in, k, NULL);
    const int64_t bd[1] = {kd[1]};
    const char *ins[3] = {in, k, ox_const_float(g, "bias", bd, 1, w[1])};
    const char *out = ox_fresh(g, "Gemm");
    if (!ins[2] || !out || !ox_node(g, "Gemm", ins, 3, &out, 1)) return NULL;
    return out;
  }
  /* (N, ..., F) x (F, units) on the last axis. */
  const char *y = ox_binary(g, "MatMul", in, k, NULL);
  if (l->nparams < 2) return y;
  const int64_t bd[1] = {kd[1]};
  return ox_binary(g, "Add", y, ox_const_float(g, "bias", bd, 1, w[1]), NULL);
}

/* ---- convolutions and pooling ---- */

static const char *conv(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                        const char *in, bool transposed) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  const dt_conv_geom_t *c = &info.geom;
  const int spatial = l->in_shape.ndim - 1;
  const int kh = c->kh, kw = c->kw;
  /* Keras' kernel is (kh, kw, a, b) (for conv1d (kw, a, b)); a = in, b = out channels
   * for a convolution, a = filters, b = in channels for a transposed one. ONNX wants
   * (out, in, kh, kw) for Conv and (in, filters, kh, kw) for ConvTranspose: both are
   * (b, a, kh, kw). */
  const int a = c->ic, b = c->oc;
  const size_t taps = (size_t)kh * (size_t)kw;
  float *kt = malloc(sizeof *kt * taps * (size_t)a * (size_t)b);
  if (!kt) {
    g->oom = true;
    return NULL;
  }
  for (int i = 0; i < b; i++)
    for (int j = 0; j < a; j++)
      for (size_t t = 0; t < taps; t++)
        kt[((size_t)i * (size_t)a + (size_t)j) * taps + t] =
            w[0][(t * (size_t)a + (size_t)j) * (size_t)b + (size_t)i];
  int64_t kd[4] = {b, a, kh, kw};
  if (spatial == 1) kd[2] = kw;
  const char *k = ox_const_float(g, "kernel", kd, spatial + 2, kt);
  free(kt);
  const char *x = to_channels_first(g, in, spatial);
  const char *ins[3] = {x, k, NULL};
  int nin = 2;
  if (info.use_bias) {
    const int64_t bd[1] = {l->param_decl[1].shape.dims[0]};
    ins[nin++] = ox_const_float(g, "bias", bd, 1, w[1]);
  }
  const char *y = ox_fresh(g, transposed ? "ConvTranspose" : "Conv");
  if (!y || !ins[nin - 1]) return NULL;
  ox_node_t *n = ox_node(g, transposed ? "ConvTranspose" : "Conv", ins, nin, &y, 1);
  if (!transposed) {
    spatial_attrs(g, n, c, spatial, true);
  } else {
    /* The convolution this is the adjoint of maps the layer's output (c->ih, c->iw) to
     * its input (c->oh, c->ow). ONNX's output extent is
     * s (n - 1) + output_padding + k - pad_begin - pad_end: choose the end padding (or
     * the output padding) that gives back c->ih. */
    const int ekh = (kh - 1) * c->dh + 1, ekw = (kw - 1) * c->dw + 1;
    const int dh = c->ih + c->ph - ekh - c->sh * (c->oh - 1);
    const int dw = c->iw + c->pw - ekw - c->sw * (c->ow - 1);
    const int64_t k2[] = {kh, kw}, st[] = {c->sh, c->sw}, dil[] = {c->dh, c->dw},
                  p[] = {c->ph, c->pw, dh < 0 ? -dh : 0, dw < 0 ? -dw : 0},
                  op[] = {dh > 0 ? dh : 0, dw > 0 ? dw : 0};
    ox_attr_ints(g, n, "kernel_shape", k2, 2);
    ox_attr_ints(g, n, "strides", st, 2);
    ox_attr_ints(g, n, "dilations", dil, 2);
    ox_attr_ints(g, n, "pads", p, 4);
    ox_attr_ints(g, n, "output_padding", op, 2);
  }
  return to_channels_last(g, y, spatial);
}

static const char *pool(ox_graph_t *g, const dt_layer_t *l, const char *in, bool max) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  ox_node_t *n;
  const char *y = ox_unary(g, max ? "MaxPool" : "AveragePool", to_channels_first(g, in, 2), &n);
  /* AveragePool's default count_include_pad = 0 divides by the real positions only,
   * as dtrain (and TensorFlow) do. */
  spatial_attrs(g, n, &info.geom, 2, false);
  return to_channels_last(g, y, 2);
}

static const char *global_pool(ox_graph_t *g, const dt_layer_t *l, const char *in, bool max) {
  /* Every axis between the batch and the channels. */
  const int64_t axes[] = {1, 2};
  ox_node_t *n;
  const char *y = ox_unary(g, max ? "ReduceMax" : "ReduceMean", in, &n);
  ox_attr_ints(g, n, "axes", axes, l->in_shape.ndim - 1);
  ox_attr_int(g, n, "keepdims", 0);
  return y;
}

/* ---- normalization, embedding, activations ---- */

static const char *batch_norm(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                              const float *const *s, const char *in) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  const int c = l->in_shape.dims[l->in_shape.ndim - 1];
  /* y = (x - moving_mean) * gamma / sqrt(moving_variance + epsilon) + beta, per channel
   * (the last axis, which broadcasting lines up). */
  float *scale = malloc(sizeof *scale * (size_t)c);
  if (!scale) {
    g->oom = true;
    return NULL;
  }
  for (int i = 0; i < c; i++) {
    const float inv = 1.0f / sqrtf(s[1][i] + info.epsilon);
    scale[i] = info.gamma >= 0 ? inv * w[info.gamma][i] : inv;
  }
  const int64_t d[1] = {c};
  const char *y = ox_binary(g, "Sub", in, ox_const_float(g, "moving_mean", d, 1, s[0]), NULL);
  y = ox_binary(g, "Mul", y, ox_const_float(g, "scale", d, 1, scale), NULL);
  free(scale);
  if (info.beta >= 0) y = ox_binary(g, "Add", y, ox_const_float(g, "beta", d, 1, w[info.beta]), NULL);
  return y;
}

static const char *embedding(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                             const char *in) {
  /* Ids arrive as floats; Cast truncates toward zero, as dtrain does. */
  ox_node_t *n;
  const char *ids = ox_unary(g, "Cast", in, &n);
  ox_attr_int(g, n, "to", DTRAIN__ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
  const dt_shape_t *es = &l->param_decl[0].shape;
  const int64_t d[2] = {es->dims[0], es->dims[1]};
  const char *y = ox_binary(g, "Gather", ox_const_float(g, "embeddings", d, 2, w[0]), ids, &n);
  ox_attr_int(g, n, "axis", 0);
  return y;
}

static const char *softmax(ox_graph_t *g, const dt_layer_t *l, const char *in) {
  /* dtrain's softmax runs over all the values of a sample. */
  ox_node_t *n;
  if (l->in_shape.ndim == 1) {
    const char *y = ox_unary(g, "Softmax", in, &n);
    ox_attr_int(g, n, "axis", -1);
    return y;
  }
  const char *f = ox_unary(g, "Flatten", in, &n);
  ox_attr_int(g, n, "axis", 1);
  const char *y = ox_unary(g, "Softmax", f, &n);
  ox_attr_int(g, n, "axis", -1);
  return reshape_to(g, y, &l->out_shape);
}

/* ---- merges and image resizing (graph models) ---- */

/* add, subtract, multiply, average, maximum: element-wise over inputs of one shape, in
 * dtrain's order (left to right; the average divides the sum by the count). */
static const char *merge(ox_graph_t *g, const dt_layer_t *l, const char *const *in) {
  const char *t = l->ops->type;
  const int n = l->ninputs;
  if (!strcmp(t, "subtract")) return ox_binary(g, "Sub", in[0], in[1], NULL);
  if (!strcmp(t, "multiply")) {
    /* Mul is binary: a chain, as dtrain multiplies. */
    const char *y = in[0];
    for (int k = 1; k < n; k++) y = ox_binary(g, "Mul", y, in[k], NULL);
    return y;
  }
  /* Sum and Max take any number of inputs. */
  const bool max = !strcmp(t, "maximum");
  const char *y = ox_fresh(g, max ? "Max" : "Sum");
  if (!y || !ox_node(g, max ? "Max" : "Sum", in, n, &y, 1)) return NULL;
  if (strcmp(t, "average")) return y;
  const float count = (float)n;
  return ox_binary(g, "Div", y, ox_const_float(g, "count", NULL, 0, &count), NULL);
}

static const char *concatenate(ox_graph_t *g, const dt_layer_t *l, const char *const *in) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  /* Keras' axis (the batch axis is 0) is ONNX's, on the same channels-last values. */
  const char *y = ox_fresh(g, "Concat");
  ox_node_t *n;
  if (!y || !(n = ox_node(g, "Concat", in, l->ninputs, &y, 1))) return NULL;
  ox_attr_int(g, n, "axis", info.axis);
  return y;
}

static const char *upsampling2d(ox_graph_t *g, const dt_layer_t *l, const char *in) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  /* Output pixel (i, j) is input pixel (floor(i / sh), floor(j / sw)): Resize's nearest
   * mode with asymmetric coordinates and floor rounding is exactly that. Resize scales
   * every axis; here the two spatial ones of (N, H, W, C). */
  const float scales[4] = {1.0f, (float)info.resize.sh, (float)info.resize.sw, 1.0f};
  const int64_t sd[1] = {4};
  const char *ins[3] = {in, "", ox_const_float(g, "scales", sd, 1, scales)};
  const char *y = ox_fresh(g, "Resize");
  ox_node_t *n;
  if (!ins[2] || !y || !(n = ox_node(g, "Resize", ins, 3, &y, 1))) return NULL;
  ox_attr_string(g, n, "mode", "nearest");
  ox_attr_string(g, n, "coordinate_transformation_mode", "asymmetric");
  ox_attr_string(g, n, "nearest_mode", "floor");
  return y;
}

static const char *zero_padding2d(ox_graph_t *g, const dt_layer_t *l, const char *in) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  const dt_resize2d_t *r = &info.resize;
  /* Begins of N, H, W, C, then their ends; constant mode, value 0 (the defaults). */
  const int64_t pads[8] = {0, r->top, r->left, 0, 0, r->bottom, r->right, 0};
  return ox_binary(g, "Pad", in, ox_const_ints(g, "pads", pads, 8), NULL);
}

/* ---- recurrent layers ---- */

/* Keras' gate (block of `units` columns) that each ONNX gate takes: ONNX orders the
 * LSTM's gates i, o, f, c where Keras has i, f, c, o; the GRU's z, r, h are the same. */
static int keras_gate(dt_rnn_kind kind, int onnx_gate) {
  static const int lstm[4] = {0, 3, 1, 2};
  return kind == DT_RNN_LSTM ? lstm[onnx_gate] : onnx_gate;
}

static const char *recurrent(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                             const char *in) {
  dt_layer_info_t info;
  dt_layer_info(l, &info);
  const bool bidir = !strcmp(l->ops->type, "bidirectional");
  const int dirs = bidir ? 2 : 1, H = info.units, F = l->in_shape.dims[1];
  const int G = info.rnn_kind == DT_RNN_LSTM ? 4 : info.rnn_kind == DT_RNN_GRU ? 3 : 1;
  const size_t GH = (size_t)G * (size_t)H;
  float *W = calloc((size_t)dirs * GH * (size_t)F, sizeof *W);
  float *R = calloc((size_t)dirs * GH * (size_t)H, sizeof *R);
  float *B = calloc((size_t)dirs * 2 * GH, sizeof *B);
  const char *y = NULL;
  if (!W || !R || !B) {
    g->oom = true;
    goto done;
  }
  /* W (dirs, G*H, F), R (dirs, G*H, H), B (dirs, 2*G*H) = input bias, recurrent bias;
   * Keras' kernel (F, G*H), recurrent kernel (H, G*H), bias (G*H), or for the GRU
   * (2, G*H) with the input bias first. */
  for (int d = 0; d < dirs; d++) {
    const float *K = w[3 * d], *RK = w[3 * d + 1], *bias = w[3 * d + 2];
    for (int og = 0; og < G; og++) {
      const size_t kg = (size_t)keras_gate(info.rnn_kind, og);
      for (int j = 0; j < H; j++) {
        const size_t row = (size_t)og * (size_t)H + (size_t)j, col = kg * (size_t)H + (size_t)j;
        for (int f = 0; f < F; f++) W[((size_t)d * GH + row) * (size_t)F + (size_t)f] = K[(size_t)f * GH + col];
        for (int k = 0; k < H; k++) R[((size_t)d * GH + row) * (size_t)H + (size_t)k] = RK[(size_t)k * GH + col];
        B[(size_t)d * 2 * GH + row] = bias[col];
        if (info.rnn_kind == DT_RNN_GRU) B[(size_t)d * 2 * GH + GH + row] = bias[GH + col];
      }
    }
  }
  const int64_t wd[3] = {dirs, (int64_t)GH, F}, rd[3] = {dirs, (int64_t)GH, H},
                bd[2] = {dirs, 2 * (int64_t)GH};
  static const int64_t to_time_major[] = {1, 0, 2};
  const char *ins[4] = {transpose(g, in, to_time_major, 3), ox_const_float(g, "W", wd, 3, W),
                        ox_const_float(g, "R", rd, 3, R), ox_const_float(g, "B", bd, 2, B)};
  const char *op = info.rnn_kind == DT_RNN_LSTM ? "LSTM" : info.rnn_kind == DT_RNN_GRU ? "GRU" : "RNN";
  const char *outs[2] = {ox_fresh(g, "Y"), ox_fresh(g, "Y_h")};
  if (!ins[0] || !ins[1] || !ins[2] || !ins[3] || !outs[0] || !outs[1]) goto done;
  ox_node_t *n = ox_node(g, op, ins, 4, outs, 2);
  ox_attr_int(g, n, "hidden_size", H);
  ox_attr_string(g, n, "direction", bidir ? "bidirectional" : "forward");
  /* Keras' reset_after = true GRU: the reset gate multiplies (h R_h + b_rh). */
  if (info.rnn_kind == DT_RNN_GRU) ox_attr_int(g, n, "linear_before_reset", 1);
  if (info.return_sequences) {
    /* Y is (T, dirs, N, H): the backward direction's steps are in input order already. */
    if (info.merge_sum) {
      const int64_t ax[1] = {1};
      ox_node_t *r;
      const char *sum = ox_binary(g, "ReduceSum", outs[0], ox_const_ints(g, "axes", ax, 1), &r);
      ox_attr_int(g, r, "keepdims", 0);
      y = transpose(g, sum, to_time_major, 3);
    } else {
      static const int64_t p[] = {2, 0, 1, 3}; /* (N, T, dirs, H) */
      y = reshape_to(g, transpose(g, outs[0], p, 4), &l->out_shape);
    }
  } else {
    /* Y_h is (dirs, N, H): each direction's last state (the backward one's after step 0). */
    if (info.merge_sum) {
      const int64_t ax[1] = {0};
      ox_node_t *r;
      y = ox_binary(g, "ReduceSum", outs[1], ox_const_ints(g, "axes", ax, 1), &r);
      ox_attr_int(g, r, "keepdims", 0);
    } else {
      y = reshape_to(g, transpose(g, outs[1], to_time_major, 3), &l->out_shape);
    }
  }
done:
  free(W);
  free(R);
  free(B);
  return y;
}

int dt_onnx_add_layer(ox_graph_t *g, const dt_layer_t *l, const float *const *w,
                      const float *const *s, const char *const *ins, const char **out,
                      dt_error_t *err) {
  const char *t = l->ops->type;
  const char *y = NULL, *in = ins[0];
  ox_node_t *n;
  if (!strcmp(t, "add") || !strcmp(t, "subtract") || !strcmp(t, "multiply") ||
      !strcmp(t, "average") || !strcmp(t, "maximum")) {
    y = merge(g, l, ins);
  } else if (!strcmp(t, "concatenate")) {
    y = concatenate(g, l, ins);
  } else if (!strcmp(t, "upsampling2d")) {
    y = upsampling2d(g, l, in);
  } else if (!strcmp(t, "zero_padding2d")) {
    y = zero_padding2d(g, l, in);
  } else if (!strcmp(t, "dense")) {
    y = dense(g, l, w, in);
  } else if (!strcmp(t, "conv1d") || !strcmp(t, "conv2d")) {
    y = conv(g, l, w, in, false);
  } else if (!strcmp(t, "conv2d_transpose")) {
    y = conv(g, l, w, in, true);
  } else if (!strcmp(t, "max_pool2d") || !strcmp(t, "avg_pool2d")) {
    y = pool(g, l, in, t[1] == 'a');
  } else if (!strcmp(t, "global_max_pool") || !strcmp(t, "global_avg_pool")) {
    y = global_pool(g, l, in, !strcmp(t, "global_max_pool"));
  } else if (!strcmp(t, "flatten")) {
    y = ox_unary(g, "Flatten", in, &n);
    ox_attr_int(g, n, "axis", 1);
  } else if (!strcmp(t, "reshape")) {
    y = reshape_to(g, in, &l->out_shape);
  } else if (!strcmp(t, "batch_norm")) {
    y = batch_norm(g, l, w, s, in);
  } else if (!strcmp(t, "dropout")) {
    y = in; /* inference: the identity */
  } else if (!strcmp(t, "sampling")) {
    y = ins[0]; /* z = z_mean: a VAE's deterministic form, which predict also runs */
  } else if (!strcmp(t, "embedding")) {
    y = embedding(g, l, w, in);
  } else if (!strcmp(t, "simple_rnn") || !strcmp(t, "lstm") || !strcmp(t, "gru") ||
             !strcmp(t, "bidirectional")) {
    y = recurrent(g, l, w, in);
  } else if (!strcmp(t, "relu")) {
    y = ox_unary(g, "Relu", in, NULL);
  } else if (!strcmp(t, "leaky_relu")) {
    dt_layer_info_t info;
    dt_layer_info(l, &info);
    y = ox_unary(g, "LeakyRelu", in, &n);
    ox_attr_float(g, n, "alpha", info.alpha);
  } else if (!strcmp(t, "sigmoid")) {
    y = ox_unary(g, "Sigmoid", in, NULL);
  } else if (!strcmp(t, "tanh")) {
    y = ox_unary(g, "Tanh", in, NULL);
  } else if (!strcmp(t, "softmax")) {
    y = softmax(g, l, in);
  } else {
    return dt_error_set(err, DT_ERR_CONFIG,
                        "ONNX export: layer %s is of type '%s', which the exporter does not "
                        "know (docs/onnx.md lists the types it maps)",
                        l->name, t);
  }
  if (!y || g->oom)
    return dt_error_set(err, DT_ERR_NOMEM, "ONNX export: out of memory at layer %s", l->name);
  *out = y;
  return 0;
}
