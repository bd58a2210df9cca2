/* dtrain-worker import --keras FILE -o OUTDIR (see cmd_import.h): dt_keras_import reads
 * the model, dt_keras_import_write writes OUTDIR/model.ini and, from a .keras file,
 * OUTDIR/init_weights.safetensors, which [model] init_weights loads at the start of
 * training. */
#include "cmd_import.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd_common.h"
#include "dtrain/keras.h"

static void usage(FILE *out) {
  fputs("Usage: dtrain-worker import --keras FILE -o OUTDIR\n"
        "\n"
        "Reads a Keras 3 model, a .keras file (architecture and weights) or the JSON of\n"
        "model.to_json() (architecture only), and writes\n"
        "  OUTDIR/model.ini                 its [model] and [layer.N] sections\n"
        "  OUTDIR/init_weights.safetensors  its weights in dtrain's names (.keras only)\n"
        "To train it, include model.ini from a run config that has the [data] and [train]\n"
        "sections, with [model] init_weights = OUTDIR/init_weights.safetensors to start\n"
        "from the Keras weights (docs/keras.md). A Keras layer or option dtrain lacks is an\n"
        "error naming the layer and its class.\n"
        "\n"
        "  -k, --keras FILE    the Keras model (.keras, or .json)\n"
        "  -o, --output OUTDIR the folder to write (made if missing)\n"
        "  -h, --help          show this help and exit\n"
        "\n"
        "Exit status: 0 done, 2 a bad option or a model dtrain cannot express, 1 a corrupt\n"
        "or unreadable file.\n",
        out);
}

int cmd_import_main(int argc, char **argv) {
  static const struct option longopts[] = {{"keras", required_argument, 0, 'k'},
                                           {"output", required_argument, 0, 'o'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  const char *keras = NULL, *outdir = NULL;
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":k:o:h", longopts, NULL)) != -1) {
    switch (c) {
      case 'k': keras = optarg; break;
      case 'o': outdir = optarg; break;
      case 'h': usage(stdout); return 0;
      case ':':
        fprintf(stderr, "dtrain-worker import: option '%s' needs a value\n", argv[optind - 1]);
        return CMD_EXIT_USAGE;
      default:
        fprintf(stderr, "dtrain-worker import: unknown option '%s' (see import --help)\n",
                argv[optind - 1]);
        return CMD_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "dtrain-worker import: unexpected argument '%s' (see import --help)\n",
            argv[optind]);
    return CMD_EXIT_USAGE;
  }
  if (!keras || !outdir) {
    fprintf(stderr, "dtrain-worker import: --keras FILE and -o OUTDIR are required (see "
            "import --help)\n");
    return CMD_EXIT_USAGE;
  }
  dt_error_t err = {0};
  dt_keras_import_t imp;
  int rc = dt_keras_import(keras, &imp, &err);
  if (!rc) {
    rc = dt_keras_import_write(&imp, outdir, &err);
    if (!rc)
      printf("Imported %s: %s/model.ini%s\n", keras, outdir,
             imp.has_weights ? ", init_weights.safetensors" : " (no weights: a JSON model)");
    dt_keras_import_free(&imp);
  }
  if (rc) {
    fprintf(stderr, "dtrain-worker import: error: %s\n", err.msg);
    return cmd_exit_code(rc);
  }
  return 0;
}
