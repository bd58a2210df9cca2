/* Tests for graph models (Keras' functional API in the config): gradients through every
 * merge layer, upsampling2d, zero_padding2d and fan-out against central differences;
 * forward values of the new kernels against hand-computed ones; the topological order,
 * names and inputs a graph gets; a stack written as an explicit graph giving bit-identical
 * gradients; the arena plan (a stack needs no more than before, a graph shares memory);
 * the gradient-ready ranges of a graph; and every DAG error with its message. */
#include "gradcheck.h"

/* ---- gradient checks through whole graph models ---- */

/* Builds the graph `text` for inputs of in_shape and checks every parameter gradient
 * (the parameters before a merge get theirs only through the merge's backward). */
static void graph_check(const char *what, const char *text, dt_shape_t in_shape, int batch,
                        uint64_t seed, int line) {
  dt_rng_t rng;
  dt_rng_seed(&rng, seed);
  net_t n;
  if (!net_build_shape(&n, text, in_shape, batch)) {
    net_free(&n);
    return;
  }
  n.fwd_seed = dt_rng_u64(&rng);
  int tries = 0;
  do {
    net_init(&n, &rng);
    for (int i = 0; i < batch * n.in; i++) n.x[i] = uniform(&rng, -1.0f, 1.0f);
  } while (near_kink(&n) && ++tries < 1000);
  CHECK(tries < 1000);
  net_targets(&n, &rng);
  net_check_params(&n, what, line);
  net_free(&n);
}

/* Two dense branches of the input merged by `type`, then a dense head. */
static void check_merge(const char *type, const char *extra, int branches, uint64_t seed,
                        int line) {
  char text[2048], what[64];
  size_t used = (size_t)snprintf(text, sizeof text, "[model]\nloss = mse\n");
  for (int b = 0; b < branches; b++)
    used += (size_t)snprintf(text + used, sizeof text - used,
                             "[layer.%d]\ntype = dense\nunits = 4\nname = b%d\ninputs = input\n",
                             b + 1, b);
  used += (size_t)snprintf(text + used, sizeof text - used, "[layer.%d]\ntype = %s\n%sinputs = ",
                           branches + 1, type, extra);
  for (int b = 0; b < branches; b++)
    used += (size_t)snprintf(text + used, sizeof text - used, b ? ", b%d" : "b%d", b);
  snprintf(text + used, sizeof text - used, "\n[layer.%d]\ntype = dense\nunits = 3\n",
           branches + 2);
  snprintf(what, sizeof what, "%s of %d", type, branches);
  graph_check(what, text, dt_shape_1d(5), 3, seed, line);
}

static void test_gradients(void) {
  check_merge("add", "", 2, 1, __LINE__);
  check_merge("add", "", 3, 2, __LINE__);
  check_merge("subtract", "", 2, 3, __LINE__);
  check_merge("multiply", "", 2, 4, __LINE__);
  check_merge("multiply", "", 3, 5, __LINE__);
  check_merge("average", "", 2, 6, __LINE__);
  check_merge("average", "", 4, 7, __LINE__);
  check_merge("maximum", "", 2, 8, __LINE__);
  check_merge("maximum", "", 3, 9, __LINE__);
  check_merge("concatenate", "", 2, 10, __LINE__);
  check_merge("concatenate", "axis = 1\n", 3, 11, __LINE__);

  /* Concatenation of images along the channels (axis -1) and along the rows (axis 1). */
  static const char concat_img[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = conv2d\nfilters = 2\nkernel_size = 3\npadding = same\nname = a\n"
      "[layer.2]\ntype = conv2d\nfilters = 3\nkernel_size = 1\ninputs = input\nname = b\n"
      "[layer.3]\ntype = concatenate\ninputs = a, b\n"
      "[layer.4]\ntype = flatten\n"
      "[layer.5]\ntype = dense\nunits = 2\n";
  graph_check("concatenate channels", concat_img, dt_shape_3d(4, 3, 2), 2, 12, __LINE__);
  static const char concat_rows[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = conv2d\nfilters = 2\nkernel_size = 3\npadding = same\nname = a\n"
      "[layer.2]\ntype = conv2d\nfilters = 2\nkernel_size = 2,1\ninputs = input\nname = b\n"
      "[layer.3]\ntype = concatenate\naxis = 1\ninputs = b, a\n"
      "[layer.4]\ntype = flatten\n"
      "[layer.5]\ntype = dense\nunits = 2\n";
  graph_check("concatenate rows", concat_rows, dt_shape_3d(4, 3, 2), 2, 13, __LINE__);

  static const char upsample[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = conv2d\nfilters = 2\nkernel_size = 2\n"
      "[layer.2]\ntype = upsampling2d\nsize = 2,3\n"
      "[layer.3]\ntype = conv2d\nfilters = 2\nkernel_size = 3\n"
      "[layer.4]\ntype = flatten\n"
      "[layer.5]\ntype = dense\nunits = 2\n";
  graph_check("upsampling2d", upsample, dt_shape_3d(3, 3, 2), 2, 14, __LINE__);
  static const char padding[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = conv2d\nfilters = 2\nkernel_size = 2\n"
      "[layer.2]\ntype = zero_padding2d\npadding = 1,0,2,1\n"
      "[layer.3]\ntype = conv2d\nfilters = 2\nkernel_size = 3\n"
      "[layer.4]\ntype = flatten\n"
      "[layer.5]\ntype = dense\nunits = 2\n";
  graph_check("zero_padding2d", padding, dt_shape_3d(3, 4, 2), 2, 15, __LINE__);

  /* Fan-out: one output feeds two layers, and one layer twice. */
  static const char fanout[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = dense\nunits = 4\nactivation = tanh\nname = h\n"
      "[layer.2]\ntype = dense\nunits = 4\nname = p\ninputs = h\n"
      "[layer.3]\ntype = dense\nunits = 4\nname = q\ninputs = h\n"
      "[layer.4]\ntype = multiply\ninputs = p, q, h\n"
      "[layer.5]\ntype = add\ninputs = layer.4, h, h\n"
      "[layer.6]\ntype = dense\nunits = 2\n";
  graph_check("fan-out", fanout, dt_shape_1d(3), 3, 16, __LINE__);
  /* A residual block on conv layers with batch norm, its input used twice. */
  static const char residual[] =
      "[model]\nloss = sparse_categorical_crossentropy\n"
      "[layer.1]\ntype = conv2d\nfilters = 3\nkernel_size = 3\npadding = same\nname = stem\n"
      "[layer.2]\ntype = conv2d\nfilters = 3\nkernel_size = 3\npadding = same\n"
      "[layer.3]\ntype = batch_norm\n"
      "[layer.4]\ntype = tanh\n"
      "[layer.5]\ntype = conv2d\nfilters = 3\nkernel_size = 3\npadding = same\n"
      "[layer.6]\ntype = add\ninputs = stem, layer.5\n"
      "[layer.7]\ntype = global_avg_pool\n"
      "[layer.8]\ntype = dense\nunits = 3\nactivation = softmax\n";
  graph_check("residual block", residual, dt_shape_3d(4, 4, 2), 3, 17, __LINE__);
}

/* ---- forward values of the new kernels ---- */

static void test_forward_values(void) {
  dt_stream_t *s = test_device()->stream;
  /* Merges over 3 values of 3 inputs; maximum's tie gives the gradient to the first. */
  const float a[3] = {1, 5, -2}, b[3] = {4, 5, -3}, c[3] = {2, 0, 7};
  const float *xs[3] = {a, b, c};
  float y[3], d0[3], d1[3], d2[3], dy[3] = {1, 2, 3};
  float *dxs[3] = {d0, d1, d2};
  dt_device_merge_forward(s, DT_MERGE_ADD, 3, 3, xs, y);
  CHECK_NEAR(y[0], 7.0, 0); CHECK_NEAR(y[1], 10.0, 0); CHECK_NEAR(y[2], 2.0, 0);
  dt_device_merge_forward(s, DT_MERGE_SUBTRACT, 3, 2, xs, y);
  CHECK_NEAR(y[0], -3.0, 0); CHECK_NEAR(y[1], 0.0, 0); CHECK_NEAR(y[2], 1.0, 0);
  dt_device_merge_forward(s, DT_MERGE_MULTIPLY, 3, 3, xs, y);
  CHECK_NEAR(y[0], 8.0, 0); CHECK_NEAR(y[1], 0.0, 0); CHECK_NEAR(y[2], 42.0, 0);
  dt_device_merge_forward(s, DT_MERGE_AVERAGE, 3, 2, xs, y);
  CHECK_NEAR(y[0], 2.5, 0); CHECK_NEAR(y[1], 5.0, 0); CHECK_NEAR(y[2], -2.5, 0);
  dt_device_merge_forward(s, DT_MERGE_MAXIMUM, 3, 3, xs, y);
  CHECK_NEAR(y[0], 4.0, 0); CHECK_NEAR(y[1], 5.0, 0); CHECK_NEAR(y[2], 7.0, 0);
  dt_device_merge_backward(s, DT_MERGE_MAXIMUM, 3, 3, xs, y, dy, dxs);
  /* Column 1: a and b tie at 5: a (the first) takes dy. */
  CHECK_NEAR(d0[0], 0.0, 0); CHECK_NEAR(d1[0], 1.0, 0); CHECK_NEAR(d2[0], 0.0, 0);
  CHECK_NEAR(d0[1], 2.0, 0); CHECK_NEAR(d1[1], 0.0, 0); CHECK_NEAR(d2[1], 0.0, 0);
  CHECK_NEAR(d0[2], 0.0, 0); CHECK_NEAR(d1[2], 0.0, 0); CHECK_NEAR(d2[2], 3.0, 0);
  dt_device_merge_forward(s, DT_MERGE_MULTIPLY, 3, 3, xs, y);
  dt_device_merge_backward(s, DT_MERGE_MULTIPLY, 3, 3, xs, y, dy, dxs);
  /* d/da of a b c at column 1 is b c = 0 even though a is not zero; d/dc = a b = 25 * 2. */
  CHECK_NEAR(d0[1], 0.0, 0); CHECK_NEAR(d2[1], 50.0, 0); CHECK_NEAR(d1[2], -2.0 * 7 * 3, 0);

  /* Upsampling a 1x2x1 image by 2x1 and padding it by 1,0,0,2. */
  const float img[2] = {3, 4};
  float up[4], pad[2 * 5];
  dt_resize2d_t r = {.h = 1, .w = 2, .c = 1, .sh = 2, .sw = 1};
  dt_device_upsample2d_forward(s, &r, 1, img, up);
  CHECK_NEAR(up[0], 3.0, 0); CHECK_NEAR(up[1], 4.0, 0); CHECK_NEAR(up[2], 3.0, 0); CHECK_NEAR(up[3], 4.0, 0);
  float back[2];
  const float gup[4] = {1, 2, 10, 20};
  dt_device_upsample2d_backward(s, &r, 1, gup, back);
  CHECK_NEAR(back[0], 11.0, 0); CHECK_NEAR(back[1], 22.0, 0);
  dt_resize2d_t p = {.h = 1, .w = 2, .c = 1, .top = 1, .bottom = 0, .left = 0, .right = 3};
  dt_device_pad2d_forward(s, &p, 1, img, pad);
  const float want[10] = {0, 0, 0, 0, 0, 3, 4, 0, 0, 0};
  for (int i = 0; i < 10; i++) CHECK_NEAR(pad[i], want[i], 0);
  float gpad[10];
  for (int i = 0; i < 10; i++) gpad[i] = (float)i;
  dt_device_pad2d_backward(s, &p, 1, gpad, back);
  CHECK_NEAR(back[0], 5.0, 0); CHECK_NEAR(back[1], 6.0, 0);
}

/* ---- building graphs ---- */

static bool build(dt_model_t *m, dt_config_t **cfg, const char *text, dt_shape_t in, int cap) {
  dt_error_t err = {0};
  *cfg = dt_config_new();
  memset(m, 0, sizeof *m);
  int rc = dt_config_load_string(*cfg, text, "test", &err);
  if (!rc) rc = dt_model_build(m, test_device(), *cfg, in, &err);
  if (!rc && cap) rc = dt_model_prepare(m, cap, &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "  building\n%s\nfailed: %s\n", text, err.msg);
  return rc == 0;
}

/* Sections written out of order are sorted; names, inputs and shapes are recorded; the
 * concatenation of (4) and (3) is (7); the summary lists inputs and the arena. */
static void test_order_and_inputs(void) {
  static const char text[] =
      "[model]\nloss = mse\noutputs = out\n"
      "[layer.1]\ntype = concatenate\ninputs = left, right\nname = joined\n"
      "[layer.2]\ntype = dense\nunits = 4\nname = left\ninputs = input\nactivation = relu\n"
      "[layer.3]\ntype = dense\nunits = 3\nname = right\ninputs = input\n"
      "[layer.4]\ntype = dense\nunits = 2\nname = out\ninputs = joined\n";
  dt_model_t m;
  dt_config_t *cfg;
  if (build(&m, &cfg, text, dt_shape_1d(5), 2)) {
    CHECK_INT_EQ(m.nlayers, 5);
    const char *names[5] = {"left", "relu_1", "right", "joined", "out"};
    for (int i = 0; i < 5 && i < m.nlayers; i++) CHECK_STR_CONTAINS(m.layers[i].name, names[i]);
    CHECK_INT_EQ(m.layers[0].inputs[0], DT_LAYER_MODEL_INPUT);
    CHECK_INT_EQ(m.layers[1].inputs[0], 0);
    CHECK_INT_EQ(m.layers[3].ninputs, 2);
    CHECK_INT_EQ(m.layers[3].inputs[0], 1); /* "left" is the section's output: its relu */
    CHECK_INT_EQ(m.layers[3].inputs[1], 2);
    CHECK_INT_EQ(m.layers[3].out_shape.dims[0], 7);
    CHECK_INT_EQ(m.layers[4].in_shape.dims[0], 7);
    CHECK_STR_CONTAINS(m.params[0].name, "left.kernel");
    CHECK(m.is_graph);
    char sum[2048];
    dt_model_summary(&m, sum, sizeof sum);
    CHECK_STR_CONTAINS(sum, "left, right");
    CHECK_STR_CONTAINS(sum, "Activation arena:");
    dt_model_free(&m);
  }
  dt_config_free(cfg);
}

/* Gradient-ready ranges of a graph with fan-out: decreasing, disjoint, covering the
 * buffer, each reported after its layer's backward. */
static size_t ranges[64][2];
static int nranges;
static void on_ready(void *ctx, size_t begin, size_t end, dt_device_event_t *ready) {
  (void)ctx, (void)ready;
  if (nranges < 64) ranges[nranges][0] = begin, ranges[nranges][1] = end;
  nranges++;
}

static void test_grads_ready(void) {
  static const char text[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = dense\nunits = 4\nname = h\n"
      "[layer.2]\ntype = dense\nunits = 4\nname = p\n"
      "[layer.3]\ntype = dense\nunits = 4\ninputs = h\nname = q\n"
      "[layer.4]\ntype = add\ninputs = p, q, h\n"
      "[layer.5]\ntype = dense\nunits = 2\n";
  dt_model_t m;
  dt_config_t *cfg;
  if (build(&m, &cfg, text, dt_shape_1d(3), 2)) {
    m.on_grads_ready = on_ready;
    nranges = 0;
    dt_model_forward(&m, 2, true, NULL);
    for (int i = 0; i < 4; i++) m.dout[i] = 1.0f;
    dt_model_backward(&m, 2);
    CHECK_INT_EQ(nranges, 4);
    size_t expect_end = m.num_params;
    for (int i = 0; i < nranges && i < 64; i++) {
      CHECK_INT_EQ((long)ranges[i][1], (long)expect_end);
      expect_end = ranges[i][0];
    }
    CHECK_INT_EQ((long)expect_end, 0);
    dt_model_free(&m);
  }
  dt_config_free(cfg);
}

/* A stack and the same stack with every name and input written out: same layers, names
 * and order, and bit-identical outputs and gradients. */
static void test_stack_equals_graph(void) {
  static const char stack[] =
      "[model]\nloss = sparse_categorical_crossentropy\n"
      "[layer.1]\ntype = conv2d\nfilters = 3\nkernel_size = 3\nactivation = relu\n"
      "[layer.2]\ntype = batch_norm\n"
      "[layer.3]\ntype = flatten\n"
      "[layer.4]\ntype = dense\nunits = 6\nactivation = tanh\n"
      "[layer.5]\ntype = dropout\nrate = 0.3\n"
      "[layer.6]\ntype = dense\nunits = 4\nactivation = softmax\n";
  static const char graph[] =
      "[model]\nloss = sparse_categorical_crossentropy\noutputs = dense_2\n"
      "[layer.1]\ntype = conv2d\nfilters = 3\nkernel_size = 3\nactivation = relu\n"
      "inputs = input\nname = conv2d_1\n"
      "[layer.2]\ntype = batch_norm\ninputs = conv2d_1\n"
      "[layer.3]\ntype = flatten\ninputs = batch_norm_1\n"
      "[layer.4]\ntype = dense\nunits = 6\nactivation = tanh\ninputs = flatten_1\n"
      "[layer.5]\ntype = dropout\nrate = 0.3\ninputs = dense_1\n"
      "[layer.6]\ntype = dense\nunits = 4\nactivation = softmax\ninputs = dropout_1\n";
  dt_model_t a, b;
  dt_config_t *ca, *cb;
  const int batch = 3;
  if (build(&a, &ca, stack, dt_shape_3d(5, 5, 2), batch) &&
      build(&b, &cb, graph, dt_shape_3d(5, 5, 2), batch)) {
    CHECK_INT_EQ(a.nlayers, b.nlayers);
    CHECK_INT_EQ(a.nparams, b.nparams);
    for (int p = 0; p < a.nparams && p < b.nparams; p++)
      CHECK_STR_CONTAINS(a.params[p].name, b.params[p].name);
    CHECK(!a.is_graph);
    dt_rng_t r1, r2;
    dt_rng_seed(&r1, 5);
    dt_rng_seed(&r2, 5);
    dt_model_init_params(&a, &r1, NULL);
    dt_model_init_params(&b, &r2, NULL);
    const size_t nin = (size_t)batch * dt_model_input_size(&a);
    for (size_t i = 0; i < nin; i++) a.acts[0][i] = b.acts[0][i] = uniform(&r1, -1, 1);
    dt_rng_seed(&r1, 9);
    dt_rng_seed(&r2, 9);
    const float *ya = dt_model_forward(&a, batch, true, &r1);
    const float *yb = dt_model_forward(&b, batch, true, &r2);
    const size_t nout = (size_t)batch * dt_model_output_size(&a);
    CHECK(memcmp(ya, yb, sizeof(float) * nout) == 0);
    int32_t labels[3] = {0, 3, 1};
    dt_loss_compute(a.loss, ya, batch, (int)dt_model_output_size(&a), labels, NULL, a.dout);
    dt_loss_compute(b.loss, yb, batch, (int)dt_model_output_size(&b), labels, NULL, b.dout);
    dt_model_backward(&a, batch);
    dt_model_backward(&b, batch);
    CHECK(memcmp(a.grad_buf, b.grad_buf, sizeof(float) * a.num_params) == 0);
    CHECK(memcmp(a.state_buf, b.state_buf, sizeof(float) * a.num_states) == 0);
  }
  dt_model_free(&a);
  dt_model_free(&b);
  dt_config_free(ca);
  dt_config_free(cb);
}

/* The arena of a stack is no larger than the layout before graphs (every activation,
 * dout and two gradient buffers of the largest hidden activation), and a chain of merges
 * whose inputs backward never reads shares memory. */
static void test_arena(void) {
  static const char stack[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = dense\nunits = 64\nactivation = relu\n"
      "[layer.2]\ntype = dense\nunits = 32\nactivation = relu\n"
      "[layer.3]\ntype = dense\nunits = 48\n"
      "[layer.4]\ntype = dense\nunits = 8\n";
  dt_model_t m;
  dt_config_t *cfg;
  const int cap = 16;
  if (build(&m, &cfg, stack, dt_shape_1d(20), cap)) {
    size_t before = (size_t)cap * 20, max_act = 0;
    for (int i = 0; i < m.nlayers; i++) {
      size_t o = (size_t)cap * dt_shape_size(&m.layers[i].out_shape);
      before += o;
      if (i < m.nrun - 1 && o > max_act) max_act = o;
    }
    before += (size_t)cap * 8 + 2 * max_act;
    if (m.arena_floats > before)
      fprintf(stderr, "  arena %zu floats, before graphs %zu\n", m.arena_floats, before);
    CHECK(m.arena_floats <= before);
    dt_model_free(&m);
  }
  dt_config_free(cfg);
  /* add -> add -> add on one input: backward of add reads neither side, so the sums
   * before the last are dead once used, and the gradients (one per activation and four
   * parts of h's) share memory with them and each other: less than activations plus
   * one gradient each, where no sharing would need about 2.6 times the activations. */
  static const char chain[] =
      "[model]\nloss = mse\n"
      "[layer.1]\ntype = dense\nunits = 100\nname = h\n"
      "[layer.2]\ntype = add\ninputs = h, h\n"
      "[layer.3]\ntype = add\ninputs = layer.2, h\n"
      "[layer.4]\ntype = add\ninputs = layer.3, h\n"
      "[layer.5]\ntype = add\ninputs = layer.4, h\n"
      "[layer.6]\ntype = dense\nunits = 1\n";
  if (build(&m, &cfg, chain, dt_shape_1d(4), cap)) {
    size_t all = 0;
    for (int i = 0; i < m.nlayers; i++) all += (size_t)cap * dt_shape_size(&m.layers[i].out_shape);
    if (m.arena_floats >= 2 * all) fprintf(stderr, "  arena %zu, activations %zu\n", m.arena_floats, all);
    CHECK(m.arena_floats < 2 * all);
    dt_model_free(&m);
  }
  dt_config_free(cfg);
}

/* ---- DAG errors ---- */

static void check_error(const char *text, int code, const char *const *needles, int line) {
  dt_error_t err = {0};
  dt_config_t *cfg = dt_config_new();
  dt_model_t m;
  memset(&m, 0, sizeof m);
  int rc = dt_config_load_string(cfg, text, "test", &err);
  CHECK_INT_EQ(rc, 0);
  if (!rc) rc = dt_model_build(&m, test_device(), cfg, dt_shape_1d(4), &err);
  if (rc != code) fprintf(stderr, "  (case at line %d: %s)\n", line, err.msg);
  CHECK_INT_EQ(rc, code);
  for (int i = 0; needles[i]; i++) {
    if (!strstr(err.msg, needles[i])) fprintf(stderr, "  (case at line %d)\n", line);
    CHECK_STR_CONTAINS(err.msg, needles[i]);
  }
  dt_model_free(&m);
  dt_config_free(cfg);
}

#define ERR(text, code, ...)                                   \
  do {                                                         \
    static const char *const n_[] = {__VA_ARGS__, NULL};       \
    check_error(text, code, n_, __LINE__);                     \
  } while (0)

static void test_errors(void) {
  /* A cycle: a -> b -> c -> a (line 6 holds [layer.2]'s inputs). */
  ERR("[layer.1]\ntype = add\nname = a\ninputs = input, c\n"
      "[layer.2]\ntype = dense\nunits = 2\nname = b\ninputs = a\n"
      "[layer.3]\ntype = dense\nunits = 2\nname = c\ninputs = b\n",
      DT_ERR_CONFIG, "test:", "cycle", "[layer.1] -> [layer.2] -> [layer.3] -> [layer.1]");
  ERR("[layer.1]\ntype = dense\nunits = 2\nname = a\ninputs = a\n", DT_ERR_CONFIG, "test:5",
      "cycle", "[layer.1] -> [layer.1]");
  /* An unknown input name, at its line. */
  ERR("[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = add\ninputs = dense_1, dense_9\n",
      DT_ERR_CONFIG, "test:6", "[layer.2]", "unknown layer 'dense_9'");
  /* A duplicate name: given twice, or given and generated. */
  ERR("[layer.1]\ntype = dense\nunits = 2\nname = x\n"
      "[layer.2]\ntype = dense\nunits = 2\nname = x\n",
      DT_ERR_CONFIG, "test:8", "[layer.2]", "'x' is taken", "[layer.1]");
  ERR("[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = dense\nunits = 2\nname = dense_1\n",
      DT_ERR_CONFIG, "test:7", "[layer.2]", "'dense_1' is taken");
  ERR("[layer.1]\ntype = dense\nunits = 2\nname = input\n", DT_ERR_CONFIG, "test:4",
      "name = 'input'");
  /* An output nobody uses, and a model input nobody takes. */
  ERR("[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = dense\nunits = 2\ninputs = input\n"
      "[layer.3]\ntype = dense\nunits = 2\n",
      DT_ERR_CONFIG, "[layer.1]", "nobody uses the output of 'dense_1'", "[layer.3]");
  ERR("[model]\noutputs = dense_1\n[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = dense\nunits = 2\n",
      DT_ERR_CONFIG, "[layer.2]", "nobody uses the output of 'dense_2'");
  /* Merge shapes that do not fit. */
  ERR("[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = dense\nunits = 3\ninputs = input\n"
      "[layer.3]\ntype = add\ninputs = dense_1, dense_2\n",
      DT_ERR_SHAPE, "test:10", "[layer.3]", "'dense_1' is (2)", "'dense_2' is (3)");
  ERR("[layer.1]\ntype = reshape\ntarget_shape = 2,2\n"
      "[layer.2]\ntype = reshape\ntarget_shape = 4,1\ninputs = input\n"
      "[layer.3]\ntype = concatenate\ninputs = reshape_1, reshape_2\n",
      DT_ERR_SHAPE, "test:10", "[layer.3]", "agree on every other axis", "(4, 1)");
  ERR("[layer.1]\ntype = dense\nunits = 2\n"
      "[layer.2]\ntype = concatenate\naxis = 0\ninputs = dense_1, input\n",
      DT_ERR_CONFIG, "test:6", "[layer.2]", "batch axis");
  /* Input counts. */
  ERR("[layer.1]\ntype = dense\nunits = 4\n"
      "[layer.2]\ntype = dense\nunits = 2\ninputs = dense_1, input\n",
      DT_ERR_CONFIG, "test:7", "[layer.2]", "takes one input");
  ERR("[layer.1]\ntype = dense\nunits = 4\n[layer.2]\ntype = add\n", DT_ERR_CONFIG,
      "[layer.2]", "add takes 2 to 8 inputs", "default");
  ERR("[layer.1]\ntype = dense\nunits = 4\n"
      "[layer.2]\ntype = subtract\ninputs = dense_1, input, input\n",
      DT_ERR_CONFIG, "[layer.2]", "subtract takes 2 to 2 inputs");
  ERR("[model]\noutputs = nothing\n[layer.1]\ntype = dense\nunits = 2\n", DT_ERR_CONFIG,
      "test:2", "unknown layer 'nothing'");
  /* Bad upsampling and padding values, and non-image inputs. */
  ERR("[layer.1]\ntype = reshape\ntarget_shape = 2,2,1\n"
      "[layer.2]\ntype = upsampling2d\nsize = 2,0\n",
      DT_ERR_CONFIG, "test:6", "[layer.2]", "size = '2,0'");
  ERR("[layer.1]\ntype = reshape\ntarget_shape = 2,2,1\n"
      "[layer.2]\ntype = zero_padding2d\npadding = 1,2,3\n",
      DT_ERR_CONFIG, "test:6", "[layer.2]", "has 3 numbers");
  ERR("[layer.1]\ntype = upsampling2d\n", DT_ERR_SHAPE, "[layer.1]", "(height, width, channels)");
}

int main(void) {
  test_gradients();
  test_forward_values();
  test_order_and_inputs();
  test_grads_ready();
  test_stack_equals_graph();
  test_arena();
  test_errors();
  test_device_release();
  return test_summary("test_graph");
}
