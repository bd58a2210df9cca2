/* dtrain-worker export --model DIR -o FILE: loads a saved model or a checkpoint
 * (saved_model.h) and writes it in the format that FILE's extension names. */
#include "cmd_export.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "dtrain/device.h"
#include "dtrain/keras.h"
#include "dtrain/onnx_export.h"
#include "saved_model.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef int (*export_fn)(saved_model_t *sm, const char *path, dt_error_t *err);

/* The model's parameters and state as host memory (states NULL where it has none). */
static int weights(saved_model_t *sm, float **params, float **states, dt_error_t *err) {
  *states = NULL;
  int rc = dt_model_to_host(&sm->model, DT_MODEL_PARAMS, params, err);
  if (!rc && sm->model.num_states) rc = dt_model_to_host(&sm->model, DT_MODEL_STATES, states, err);
  return rc;
}

static int export_onnx(saved_model_t *sm, const char *path, dt_error_t *err) {
  float *params, *states;
  int rc = weights(sm, &params, &states, err);
  return rc ? rc : dt_onnx_export(&sm->model, params, states, path, err);
}

/* Keras needs the config too: strides, padding, rates live only in [layer.N]. */
static int export_keras(saved_model_t *sm, const char *path, dt_error_t *err) {
  float *params, *states;
  int rc = weights(sm, &params, &states, err);
  return rc ? rc : dt_keras_export(&sm->model, sm->cfg, params, states, path, err);
}

/* The output formats, by file extension. */
static const struct {
  const char *ext;
  export_fn write;
} formats[] = {
    {".onnx", export_onnx},
    {".keras", export_keras},
};

static void usage(FILE *out) {
  fputs("Usage: dtrain-worker export --model DIR -o FILE\n"
        "\n"
        "Writes the model saved in DIR (a run's saved model, a checkpoint, or a checkpoint\n"
        "root: its newest good checkpoint) to FILE, in the format its extension names:\n"
        "  .onnx   ONNX (opset 17): input \"input\" (batch, sample shape), output \"output\"\n"
        "          (probabilities where the loss fuses a softmax or sigmoid); docs/onnx.md\n"
        "  .keras  a Keras 3 model file (config.json, model.weights.h5, metadata.json) that\n"
        "          keras.models.load_model opens; docs/keras.md\n"
        "\n"
        "  -m, --model DIR   the saved model or checkpoint\n"
        "  -o, --output FILE the file to write (replaced atomically)\n"
        "  -h, --help        show this help and exit\n"
        "Exit status: 0 written, 1 the export failed (a corrupt model, a file that cannot be\n"
        "written), 2 bad usage, a folder that is not a model, an unknown format.\n",
        out);
}

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                       {"output", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *model = NULL, *output = NULL;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1;) {
    switch (c) {
    case 'm': model = optarg; break;
    case 'o': output = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "error: export: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  if (!model || !output) {
    fprintf(stderr, "error: export needs --model DIR and -o FILE\n");
    usage(stderr);
    return EXIT_USAGE;
  }
  export_fn write = NULL;
  const size_t n = strlen(output);
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    const size_t e = strlen(formats[i].ext);
    if (n > e && !strcmp(output + n - e, formats[i].ext)) write = formats[i].write;
  }
  if (!write) {
    fprintf(stderr, "error: export: '%s': unknown output format; the extension names it: .onnx or .keras\n",
            output);
    return EXIT_USAGE;
  }
  dt_error_t err = {0};
  dt_device_t *dev = NULL;
  saved_model_t sm = {0};
  int rc = dt_device_create(&(dt_device_options_t){0}, &dev, &err);
  if (!rc && (rc = saved_model_load(model, dev, &sm, &err)) == 0) rc = write(&sm, output, &err);
  int status = 0;
  if (rc) {
    fprintf(stderr, "error: %s\n", err.msg);
    status = rc == DT_ERR_NOT_FOUND || rc == DT_ERR_CONFIG ? EXIT_USAGE : EXIT_FAILED;
  } else {
    printf("wrote %s (%d layers, %zu parameters) from %s\n", output, sm.model.nlayers,
           sm.model.num_params, sm.dir);
  }
  saved_model_free(&sm);
  dt_device_destroy(dev);
  return status;
}
