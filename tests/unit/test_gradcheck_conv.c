/* Gradient checks of the convolution family against central finite differences (the
 * harness and its tolerance are in gradcheck.h): conv2d (strides 1 and 2, valid and
 * same, dilation, with and without bias), conv1d (valid, same, causal), conv2d_transpose
 * (stride 2, both paddings), max and average pooling (same padding and overlapping
 * windows included), the global pools, flatten and reshape, and a whole small CNN
 * (conv-relu-pool-flatten-dense under cross-entropy). The convolutions run once on the
 * default path (the AVX-512 kernels where the CPU has them) and once on OpenBLAS alone.
 *
 * Max pooling is not differentiable where two values of a window tie. Its checks use
 * inputs that are a shuffled grid of values 0.01 apart, so no perturbation of EPS =
 * 1e-3 changes a window's maximum; the whole-model check redraws parameters and inputs
 * until every window's largest positive value leads the next by more than KINK_MARGIN. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

static dt_shape_t shape2(int a, int b) { return (dt_shape_t){2, {a, b, 1, 1}}; }

/* gradcheck_layer_shape with inputs drawn in +-[0.05, 2], in eval mode. */
static void check_layer(const char *what, const char *body, dt_shape_t in, int batch,
                        uint64_t seed, int line) {
  gradcheck_layer_shape(what, body, in, batch, (gc_opts_t){0}, seed, line);
}

static void test_convolutions(const char *path) {
  char what[128];
#define CONV(name, body, in, batch, seed)                                   \
  do {                                                                       \
    snprintf(what, sizeof what, "%s (%s)", name, path);                      \
    check_layer(what, body, in, batch, seed, __LINE__);                      \
  } while (0)
  CONV("conv2d valid stride 1", "type = conv2d\nfilters = 3\nkernel_size = 3\n",
       dt_shape_3d(5, 6, 2), 2, 11);
  CONV("conv2d same stride 1 (3,2) kernel",
       "type = conv2d\nfilters = 4\nkernel_size = 3,2\npadding = same\n", dt_shape_3d(4, 5, 3),
       2, 12);
  CONV("conv2d valid stride 2", "type = conv2d\nfilters = 2\nkernel_size = 3\nstrides = 2\n",
       dt_shape_3d(7, 6, 2), 2, 13);
  CONV("conv2d same stride 2",
       "type = conv2d\nfilters = 3\nkernel_size = 3\nstrides = 2\npadding = same\n",
       dt_shape_3d(6, 5, 2), 3, 14);
  CONV("conv2d same dilation 2",
       "type = conv2d\nfilters = 3\nkernel_size = 3\ndilation_rate = 2\npadding = same\n",
       dt_shape_3d(6, 6, 2), 2, 15);
  CONV("conv2d valid dilation 2 no bias",
       "type = conv2d\nfilters = 2\nkernel_size = 2\ndilation_rate = 2\nuse_bias = false\n",
       dt_shape_3d(5, 5, 3), 2, 16);
  CONV("conv2d same stride 2 no bias",
       "type = conv2d\nfilters = 2\nkernel_size = 3\nstrides = 2,1\npadding = same\n"
       "use_bias = false\n",
       dt_shape_3d(5, 4, 2), 2, 17);
  /* 16 and 32 filters, and 2x2x4 = 16 taps: the kernels' column blocks and W^T path. */
  CONV("conv2d 16 filters, 16 taps",
       "type = conv2d\nfilters = 16\nkernel_size = 2\npadding = same\n", dt_shape_3d(3, 4, 4),
       2, 18);
  CONV("conv2d 32 filters", "type = conv2d\nfilters = 32\nkernel_size = 2\n",
       dt_shape_3d(3, 3, 2), 2, 19);
  CONV("conv2d 1x1", "type = conv2d\nfilters = 16\nkernel_size = 1\n", dt_shape_3d(2, 3, 16),
       2, 20);
  CONV("conv1d valid", "type = conv1d\nfilters = 3\nkernel_size = 3\n", shape2(7, 2), 2, 21);
  CONV("conv1d same stride 2",
       "type = conv1d\nfilters = 2\nkernel_size = 4\nstrides = 2\npadding = same\n",
       shape2(9, 3), 2, 22);
  CONV("conv1d causal dilation 2",
       "type = conv1d\nfilters = 2\nkernel_size = 3\ndilation_rate = 2\npadding = causal\n",
       shape2(8, 2), 2, 23);
  CONV("conv2d_transpose stride 2 valid",
       "type = conv2d_transpose\nfilters = 2\nkernel_size = 3\nstrides = 2\n",
       dt_shape_3d(3, 4, 2), 2, 31);
  CONV("conv2d_transpose stride 2 same",
       "type = conv2d_transpose\nfilters = 3\nkernel_size = 3\nstrides = 2\npadding = same\n",
       dt_shape_3d(3, 3, 2), 2, 32);
  CONV("conv2d_transpose stride 2 same, kernel 4, no bias",
       "type = conv2d_transpose\nfilters = 2\nkernel_size = 4\nstrides = 2\npadding = same\n"
       "use_bias = false\n",
       dt_shape_3d(2, 3, 3), 2, 33);
  CONV("conv2d_transpose kernel 2 stride 3 valid",
       "type = conv2d_transpose\nfilters = 2\nkernel_size = 2\nstrides = 3\n",
       dt_shape_3d(2, 2, 2), 2, 34);
  CONV("conv2d_transpose 16 filters stride 2 same",
       "type = conv2d_transpose\nfilters = 16\nkernel_size = 2\nstrides = 2\npadding = same\n",
       dt_shape_3d(2, 2, 2), 2, 35);
#undef CONV
}

static void test_simple_layers(void) {
  check_layer("avg_pool2d 2x2", "type = avg_pool2d\n", dt_shape_3d(4, 5, 2), 2, 41, __LINE__);
  check_layer("avg_pool2d 3x3 stride 2 same (overlapping)",
              "type = avg_pool2d\npool_size = 3\nstrides = 2\npadding = same\n",
              dt_shape_3d(5, 6, 2), 2, 42, __LINE__);
  check_layer("avg_pool2d (2,3) stride (1,2) same",
              "type = avg_pool2d\npool_size = 2,3\nstrides = 1,2\npadding = same\n",
              dt_shape_3d(3, 5, 3), 2, 43, __LINE__);
  check_layer("global_avg_pool (H,W,C)", "type = global_avg_pool\n", dt_shape_3d(3, 4, 3), 2, 44,
              __LINE__);
  check_layer("global_avg_pool (T,F)", "type = global_avg_pool\n", shape2(5, 3), 2, 45, __LINE__);
  check_layer("flatten", "type = flatten\n", dt_shape_3d(2, 3, 2), 2, 46, __LINE__);
  check_layer("reshape", "type = reshape\ntarget_shape = 3,4\n", dt_shape_3d(2, 3, 2), 2, 47,
              __LINE__);
  check_layer("reshape to 3-d", "type = reshape\ntarget_shape = 2,2,3\n", dt_shape_1d(12), 2, 48,
              __LINE__);
}

/* gradcheck_layer_shape with inputs without ties (gc_draw_distinct), in eval mode. */
static void check_distinct(const char *what, const char *body, dt_shape_t in, int batch,
                           uint64_t seed, int line) {
  gradcheck_layer_shape(what, body, in, batch, (gc_opts_t){.draw = gc_draw_distinct}, seed, line);
}

static void test_max_pools(void) {
  check_distinct("max_pool2d 2x2", "type = max_pool2d\n", dt_shape_3d(4, 6, 3), 2, 51, __LINE__);
  check_distinct("max_pool2d 2x2 valid, odd input", "type = max_pool2d\n", dt_shape_3d(5, 5, 2),
                 2, 52, __LINE__);
  check_distinct("max_pool2d 2x2 same, odd input", "type = max_pool2d\npadding = same\n",
                 dt_shape_3d(5, 3, 2), 2, 53, __LINE__);
  check_distinct("max_pool2d 3x3 stride 2 same (overlapping)",
                 "type = max_pool2d\npool_size = 3\nstrides = 2\npadding = same\n",
                 dt_shape_3d(6, 5, 2), 2, 54, __LINE__);
  check_distinct("max_pool2d (3,2) stride 1 valid (overlapping)",
                 "type = max_pool2d\npool_size = 3,2\nstrides = 1\n", dt_shape_3d(4, 4, 2), 2, 55,
                 __LINE__);
  check_distinct("global_max_pool (H,W,C)", "type = global_max_pool\n", dt_shape_3d(3, 3, 4), 2,
                 56, __LINE__);
  check_distinct("global_max_pool (T,F)", "type = global_max_pool\n", shape2(6, 3), 3, 57,
                 __LINE__);
}

/* True if, in the input of a 2x2/stride-2 max pool layer (at model index li), some
 * window's two largest values are within KINK_MARGIN. A tie at zero (ReLU outputs of
 * negative inputs) does no harm: the gradient is zero whichever one gets it. */
static bool pool_near_tie(net_t *n, int li) {
  const dt_layer_t *l = &n->m.layers[li];
  const int h = l->in_shape.dims[0], w = l->in_shape.dims[1], c = l->in_shape.dims[2];
  const float *x = n->m.acts[li];
  for (int b = 0; b < n->batch; b++)
    for (int oy = 0; oy + 1 < h; oy += 2)
      for (int ox = 0; ox + 1 < w; ox += 2)
        for (int ch = 0; ch < c; ch++) {
          float top = -INFINITY, second = -INFINITY;
          for (int k = 0; k < 4; k++) {
            const float v = x[(((size_t)b * h + oy + k / 2) * w + ox + k % 2) * c + ch];
            if (v > top) {
              second = top;
              top = v;
            } else if (v > second) {
              second = v;
            }
          }
          if (top > 0.0f && top - second < KINK_MARGIN) return true;
        }
  return false;
}

/* The whole CNN, every parameter against the cross-entropy: the first kernel's gradient
 * is right only if every later layer's dx is. */
static void test_model(const char *path, uint64_t seed) {
  static const char text[] =
      "[model]\nloss = sparse_categorical_crossentropy\n"
      "[layer.1]\ntype = conv2d\nfilters = 4\nkernel_size = 3\npadding = same\n"
      "kernel_initializer = he_normal\nactivation = relu\n"
      "[layer.2]\ntype = max_pool2d\n"
      "[layer.3]\ntype = conv2d\nfilters = 16\nkernel_size = 2\nkernel_initializer = he_normal\n"
      "activation = relu\n"
      "[layer.4]\ntype = max_pool2d\npadding = same\n"
      "[layer.5]\ntype = flatten\n"
      "[layer.6]\ntype = dense\nunits = 5\n";
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  net_t n;
  const int batch = 2;
  if (!net_build_shape(&n, text, dt_shape_3d(6, 6, 1), batch)) {
    net_free(&n);
    return;
  }
  /* layers: conv, relu, pool, conv, relu, pool, flatten, dense */
  CHECK_INT_EQ(n.m.nlayers, 8);
  int tries = 0;
  do {
    net_init(&n, &rng);
    for (int i = 0; i < batch * n.in; i++) n.x[i] = uniform(&rng, -1.0f, 1.0f);
  } while ((near_kink(&n) || pool_near_tie(&n, 2) || pool_near_tie(&n, 5)) && ++tries < 1000);
  CHECK(tries < 1000);
  net_targets(&n, &rng);
  char what[96];
  snprintf(what, sizeof what, "CNN conv-relu-pool-conv-relu-pool-flatten-dense ce (%s)", path);
  net_check_params(&n, what, __LINE__);
  net_free(&n);
}

int main(void) {
  /* The kernels run only while BLAS is single-threaded (as in training by default). */
  openblas_set_num_threads(1);
  test_convolutions("default path");
  test_model("default path", 61);
  test_simple_layers();
  test_max_pools();
  /* The same on a device told to run convolutions on OpenBLAS alone. */
  test_device_use(&(dt_device_options_t){.cpu.conv_blas = true});
  test_convolutions("OpenBLAS");
  test_model("OpenBLAS", 62);
  test_device_release();
  gradcheck_report("test_gradcheck_conv");
  return test_summary("test_gradcheck_conv");
}
