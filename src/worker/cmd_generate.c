/* `dtrain-worker generate` (see cmd_generate.h): latent vectors z ~ N(0, 1) from a
 * seeded stream, the layers after the latent place (latent.h) run on them batch by
 * batch, and the images written as they come to a .npy file, renamed into place when
 * complete. */
#define _POSIX_C_SOURCE 200809L
#include "cmd_generate.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd_common.h"
#include "latent.h"

static const char PROG[] = "generate";

static void usage(FILE *out) {
  fputs(
      "Usage: dtrain-worker generate --model DIR --output FILE.npy [options]\n"
      "\n"
      "Draws latent vectors z from N(0, 1) and writes what the model makes of them to a\n"
      "NumPy file of float32 values in [0, 1], shaped (count, the data's sample shape). A\n"
      "VAE: its decoder (the layers after its sampling layer) on z, i.e. samples from the\n"
      "prior. A model with no sampling layer (a GAN's generator): the whole model, whose\n"
      "input is z. Outputs of a binary_crossentropy model go through its sigmoid, a\n"
      "final tanh's through (y + 1) / 2; others are clipped to [0, 1].\n"
      "\n"
      "Options:\n"
      "  -m, --model DIR           a saved model (<run folder>/model), a checkpoint, or a\n"
      "                            checkpoint root (its newest good checkpoint)\n"
      "  -o, --output FILE.npy     where the samples go\n"
      "  -n, --count N             how many samples (default 1000)\n"
      "      --seed S              the seed of the latent vectors (default 1): the same\n"
      "                            seed gives the same samples\n"
      "  -l, --layer NAME          the layer whose output z replaces (default: the model's\n"
      "                            sampling layer, else the model's input)\n"
      "  -s, --set SEC.KEY=VALUE   override a value of the model's config (repeatable)\n"
      "      --batch-size N        samples per forward pass (default: train.batch_size)\n"
      "      --threads N           compute threads (default: train.threads, else all cores)\n"
      "  -q, --quiet               no summary, only errors\n"
      "  -h, --help                show this help and exit\n"
      "\n"
      "Exit status: 0 success, 1 a corrupt model or a write error, 2 bad usage, a path that\n"
      "is not a model, or a model that cannot run from latent vectors.\n",
      out);
}

/* The .npy header (format 1.0) of a float32 array (count, shape...). */
static void npy_header(FILE *f, long count, const dt_shape_t *s) {
  char dims[128];
  size_t used = (size_t)snprintf(dims, sizeof dims, "%ld,", count);
  for (int d = 0; d < s->ndim && used < sizeof dims; d++)
    used += (size_t)snprintf(dims + used, sizeof dims - used, d ? ",%d" : " %d", s->dims[d]);
  if (s->ndim > 0 && used < sizeof dims) dims[used] = '\0';
  char dict[256];
  int len = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
  /* magic (6) + version (2) + length (2) + dict + spaces + '\n': a multiple of 64. */
  size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
  uint16_t hl = (uint16_t)(total - 10);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned char le[2] = {(unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
  fwrite(le, 1, 2, f);
  fputs(dict, f);
  for (size_t i = 10 + (size_t)len; i < total - 1; i++) fputc(' ', f);
  fputc('\n', f);
}

typedef struct {
  const char *output, *layer;
  long count;
  uint64_t seed;
} gen_opts_t;

static int generate(const cmd_opts_t *o, const gen_opts_t *g, dt_error_t *err) {
  dt_device_t *dev = NULL;
  saved_model_t sm;
  memset(&sm, 0, sizeof sm);
  float *z = NULL;
  FILE *f = NULL;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", g->output, (long)getpid());
  latent_t lt;
  int rc = cmd_open_model(o, &dev, &sm, err);
  if (!rc && (rc = latent_find(&sm.model, g->layer, &lt, err)))
    dt_error_prefix(err, "the model in %s: ", sm.dir);
  if (rc) goto out;
  dt_model_t *m = &sm.model;
  const size_t dim = dt_model_output_size(m);
  /* Images in the data's shape: a VAE's outputs are its inputs' values. */
  const dt_shape_t *shape = dim == dt_model_input_size(m) ? &m->in_shape : &m->out_shape;
  const int batch = m->capacity;
  if (!(z = malloc(sizeof *z * (size_t)batch * (lt.dim + dim)))) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto out;
  }
  float *images = z + (size_t)batch * lt.dim;
  if (!(f = fopen(tmp, "wb"))) {
    rc = dt_error_set(err, DT_ERR_IO, "cannot create '%s' (for --output %s)", tmp, g->output);
    goto out;
  }
  npy_header(f, g->count, shape);
  dt_rng_t rng;
  dt_rng_seed(&rng, g->seed);
  for (long done = 0; done < g->count && !rc;) {
    int n = g->count - done < batch ? (int)(g->count - done) : batch;
    if (!(rc = latent_generate(m, &lt, n, &rng, z, images, err)))
      fwrite(images, sizeof *images, (size_t)n * dim, f);
    done += n;
  }
  bool ok = !ferror(f);
  ok = fflush(f) == 0 && ok;
  ok = fsync(fileno(f)) == 0 && ok;
  ok = fclose(f) == 0 && ok;
  f = NULL;
  if (!rc && !ok) rc = dt_error_set(err, DT_ERR_IO, "cannot write '%s' (disk full?)", tmp);
  if (!rc && rename(tmp, g->output) != 0)
    rc = dt_error_set(err, DT_ERR_IO, "cannot rename '%s' to '%s'", tmp, g->output);
  if (!rc && !o->quiet) {
    char s[64];
    printf("Generated %ld samples of shape %s from %s (%s, %zu latent values, seed %llu) "
           "into %s\n", g->count, dt_shape_str(shape, s, sizeof s), sm.dir,
           lt.from < 0 ? "the whole model on z" : "the layers after the sampling layer",
           lt.dim, (unsigned long long)g->seed, g->output);
  }
out:
  if (f) fclose(f);
  if (rc) unlink(tmp);
  free(z);
  saved_model_free(&sm);
  dt_device_destroy(dev);
  return rc;
}

int cmd_generate_main(int argc, char **argv) {
  static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
                                           {"output", required_argument, 0, 'o'},
                                           {"count", required_argument, 0, 'n'},
                                           {"seed", required_argument, 0, 'S'},
                                           {"layer", required_argument, 0, 'l'},
                                           {"set", required_argument, 0, 's'},
                                           {"batch-size", required_argument, 0, 'B'},
                                           {"threads", required_argument, 0, 'T'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  cmd_opts_t o = {0};
  gen_opts_t g = {.count = 1000, .seed = 1};
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  if (!sets) return CMD_EXIT_FAILED;
  o.sets = sets;
  opterr = 0;
  optind = 1;
  int code = -1, c;
  while (code < 0 && (c = getopt_long(argc, argv, ":m:o:n:l:s:qh", longopts, NULL)) != -1) {
    switch (c) {
      case 'm': o.model = optarg; break;
      case 'o': g.output = optarg; break;
      case 'l': g.layer = optarg; break;
      case 's': sets[o.nsets++] = optarg; break;
      case 'q': o.quiet = true; break;
      case 'n': if (!cmd_parse_count(PROG, "--count", optarg, &g.count)) code = 2; break;
      case 'B': if (!cmd_parse_count(PROG, "--batch-size", optarg, &o.batch_size)) code = 2; break;
      case 'T': if (!cmd_parse_count(PROG, "--threads", optarg, &o.threads)) code = 2; break;
      case 'S': {
        char *end;
        unsigned long long v = strtoull(optarg, &end, 10);
        if (end == optarg || *end || optarg[0] == '-') {
          fprintf(stderr, "dtrain-worker generate: --seed '%s': expected a whole number >= 0\n",
                  optarg);
          code = CMD_EXIT_USAGE;
        }
        g.seed = v;
        break;
      }
      case 'h': usage(stdout); code = 0; break;
      case ':':
        fprintf(stderr, "dtrain-worker generate: option '%s' needs a value\n", argv[optind - 1]);
        code = CMD_EXIT_USAGE;
        break;
      default:
        fprintf(stderr, "dtrain-worker generate: unknown option '%s' (see generate --help)\n",
                argv[optind - 1]);
        code = CMD_EXIT_USAGE;
    }
  }
  if (code < 0 && optind < argc) {
    fprintf(stderr, "dtrain-worker generate: unexpected argument '%s' (see generate --help)\n",
            argv[optind]);
    code = CMD_EXIT_USAGE;
  }
  if (code < 0 && (!o.model || !g.output)) {
    fprintf(stderr, "dtrain-worker generate: --model DIR and --output FILE.npy are required "
            "(see generate --help)\n");
    code = CMD_EXIT_USAGE;
  }
  if (code < 0 && (strlen(g.output) < 4 ||
                   strcasecmp(g.output + strlen(g.output) - 4, ".npy") != 0)) {
    fprintf(stderr, "dtrain-worker generate: --output '%s': expected a .npy file\n", g.output);
    code = CMD_EXIT_USAGE;
  }
  if (code < 0) {
    dt_error_t err = {0};
    int rc = generate(&o, &g, &err);
    if (rc) fprintf(stderr, "dtrain-worker generate: error: %s\n", err.msg);
    code = rc ? cmd_exit_code(rc) : 0;
  }
  free(sets);
  return code;
}
