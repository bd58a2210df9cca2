/* `dtrain-worker predict`: a saved model's outputs for an input file, computed batch by
 * batch with the model's own preprocessing and written as they come to a .npy or .csv
 * file (see cmd_predict.h). */
#define _POSIX_C_SOURCE 200809L
#include "cmd_predict.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd_common.h"
#include "dtrain/clock.h"

static const char PROG[] = "predict";

static void usage(FILE *out) {
  fputs(
      "Usage: dtrain-worker predict --model DIR --input PATH --output FILE [options]\n"
      "\n"
      "Runs a trained model on every sample of PATH and writes its outputs to FILE (.npy:\n"
      "a NumPy array; .csv: a header row, then one row per sample), batch by batch. The\n"
      "inputs get the preprocessing the model was trained with (its preprocess.json):\n"
      "the same CSV feature columns, image size and channels, vocabulary, and scaling with\n"
      "the training set's statistics.\n"
      "\n"
      "Options:\n"
      "  -m, --model DIR           a saved model (<run folder>/model), a checkpoint, or a\n"
      "                            checkpoint root (its newest good checkpoint)\n"
      "  -i, --input PATH          the samples, in any data format: a .npy/.npz file, a CSV\n"
      "                            file (its feature columns by name; targets not needed),\n"
      "                            an IDX file, a folder of images (class sub-folders), a\n"
      "                            text TSV (label, tab, text)\n"
      "  -o, --output FILE         where the outputs go: FILE.npy or FILE.csv\n"
      "  -k, --kind KIND           probabilities (softmax or sigmoid of the outputs; the\n"
      "                            default for cross-entropy losses), classes (argmax, or\n"
      "                            output > 0.5 for a sigmoid), values (the model's raw\n"
      "                            outputs: logits, or the regression values; the default\n"
      "                            for mse and mae)\n"
      "  -f, --format FORMAT       idx, csv, numpy, images or text (default: from PATH: a\n"
      "                            folder is images, .npy/.npz numpy, .csv csv, .tsv/.txt\n"
      "                            text, a name with idx or ubyte idx; else the model's)\n"
      "  -s, --set SEC.KEY=VALUE   override a value of the model's config (repeatable)\n"
      "      --limit N             only the first N samples\n"
      "      --batch-size N        samples per forward pass (default: train.batch_size)\n"
      "      --threads N           compute threads (default: train.threads, else all cores)\n"
      "  -q, --quiet               no progress and no summary, only errors\n"
      "  -h, --help                show this help and exit\n"
      "\n"
      "Exit status: 0 success, 1 a corrupt model or input file or a write error, 2 bad\n"
      "usage, a path that is not a model, or an input that does not fit the model.\n",
      out);
}

typedef enum { KIND_PROBABILITIES, KIND_CLASSES, KIND_VALUES } output_kind;
static const char *const kind_names[] = {"probabilities", "classes", "values", NULL};

/* The output file: written to a temporary name beside it, renamed when complete. */
typedef struct {
  const char *path;
  char tmp[4200];
  FILE *f;
  bool npy;
  output_kind kind;
  size_t n, cols;   /* rows, and values per row in the file */
  bool ints;        /* class ids (int64) */
} writer_t;

/* The .npy header (format 1.0) for the whole array. */
static int npy_header(writer_t *w) {
  char dict[256];
  int len = w->cols == 1 && w->ints
                ? snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, "
                           "'shape': (%zu,), }", w->n)
                : snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, "
                           "'shape': (%zu, %zu), }", w->ints ? "<i8" : "<f4", w->n, w->cols);
  /* magic (6) + version (2) + length (2) + dict + spaces + '\n': a multiple of 64. */
  size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
  uint16_t hl = (uint16_t)(total - 10);
  fwrite("\x93NUMPY\x01\x00", 1, 8, w->f);
  unsigned char le[2] = {(unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
  fwrite(le, 1, 2, w->f);
  fputs(dict, w->f);
  for (size_t i = 10 + (size_t)len; i < total - 1; i++) fputc(' ', w->f);
  fputc('\n', w->f);
  return 0;
}

/* A CSV cell, quoted as Python's csv module quotes it when needed. */
static void csv_cell(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* Column names: the class names or target names the model records, else p0.., y0... */
static void csv_header(writer_t *w, const saved_model_t *sm) {
  int nnames = 0;
  const char **names = saved_model_class_names(sm, &nnames);
  const dt_json_t *targets = dt_json_get_typed(sm->preprocess, "targets", DT_JSON_ARRAY);
  if (w->kind == KIND_CLASSES && w->cols == 1) {
    fputs(names ? "class,class_name\n" : "class\n", w->f);
  } else {
    const dt_json_t *t = targets && (size_t)targets->count == w->cols ? targets->child : NULL;
    for (size_t j = 0; j < w->cols; j++) {
      if (j) fputc(',', w->f);
      char def[32];
      snprintf(def, sizeof def, "%s%zu", w->kind == KIND_VALUES ? "y" : "p", j);
      if (w->kind == KIND_PROBABILITIES && names && (size_t)nnames == w->cols) csv_cell(w->f, names[j]);
      else if (t && t->type == DT_JSON_STRING) csv_cell(w->f, t->string);
      else fputs(def, w->f);
      if (t) t = t->next;
    }
    fputc('\n', w->f);
  }
  free(names);
}

static int writer_open(writer_t *w, const saved_model_t *sm, dt_error_t *err) {
  snprintf(w->tmp, sizeof w->tmp, "%s.tmp-%ld", w->path, (long)getpid());
  if (!(w->f = fopen(w->tmp, "wb")))
    return dt_error_set(err, DT_ERR_IO, "cannot create '%s' (for --output %s)", w->tmp, w->path);
  if (w->npy) npy_header(w);
  else csv_header(w, sm);
  return 0;
}

/* Writes rows of the batch: y (batch, dim) are the model's outputs. */
static void writer_rows(writer_t *w, const saved_model_t *sm, const float *y, int batch,
                        size_t dim, const char **names, int nnames, float *row) {
  dt_loss_kind loss = sm->model.loss;
  for (int b = 0; b < batch; b++) {
    const float *v = y + (size_t)b * dim;
    if (w->kind == KIND_CLASSES && loss == DT_LOSS_SOFTMAX_CE) {
      size_t best = 0;
      for (size_t j = 1; j < dim; j++)
        if (v[j] > v[best]) best = j;
      int64_t c = (int64_t)best;
      if (w->npy) fwrite(&c, sizeof c, 1, w->f);
      else if (names && (int)best < nnames) {
        fprintf(w->f, "%lld,", (long long)c);
        csv_cell(w->f, names[best]);
        fputc('\n', w->f);
      } else fprintf(w->f, "%lld\n", (long long)c);
      continue;
    }
    if (w->kind == KIND_CLASSES) {
      /* A sigmoid's class: output > 0.5, i.e. logit > 0. */
      for (size_t j = 0; j < dim; j++) {
        int64_t c = v[j] > 0.0f;
        if (w->npy) fwrite(&c, sizeof c, 1, w->f);
        else if (dim == 1 && names && (int)c < nnames) {
          fprintf(w->f, "%lld,", (long long)c);
          csv_cell(w->f, names[c]);
          fputc('\n', w->f);
        } else fprintf(w->f, j + 1 < dim ? "%lld," : "%lld\n", (long long)c);
      }
      continue;
    }
    if (w->kind == KIND_PROBABILITIES && loss == DT_LOSS_SOFTMAX_CE) {
      float mx = v[0];
      for (size_t j = 1; j < dim; j++) mx = v[j] > mx ? v[j] : mx;
      double sum = 0;
      for (size_t j = 0; j < dim; j++) sum += exp((double)(v[j] - mx));
      for (size_t j = 0; j < dim; j++) row[j] = (float)(exp((double)(v[j] - mx)) / sum);
    } else if (w->kind == KIND_PROBABILITIES) {
      for (size_t j = 0; j < dim; j++) row[j] = (float)(1.0 / (1.0 + exp(-(double)v[j])));
    } else {
      memcpy(row, v, sizeof *row * dim);
    }
    if (w->npy) {
      fwrite(row, sizeof *row, dim, w->f);
    } else {
      /* %.9g reads back as the same float32: the .csv and .npy files agree exactly. */
      for (size_t j = 0; j < dim; j++) fprintf(w->f, j + 1 < dim ? "%.9g," : "%.9g\n", (double)row[j]);
    }
  }
}

static int writer_close(writer_t *w, int rc, dt_error_t *err) {
  if (!w->f) return rc;
  bool ok = !ferror(w->f);
  ok = fflush(w->f) == 0 && ok;
  ok = fsync(fileno(w->f)) == 0 && ok;
  ok = fclose(w->f) == 0 && ok;
  w->f = NULL;
  if (!rc && !ok) rc = dt_error_set(err, DT_ERR_IO, "cannot write '%s' (disk full?)", w->tmp);
  if (!rc && rename(w->tmp, w->path) != 0)
    rc = dt_error_set(err, DT_ERR_IO, "cannot rename '%s' to '%s'", w->tmp, w->path);
  if (rc) unlink(w->tmp);
  return rc;
}

static int predict(const cmd_opts_t *o, const char *output, int kind_arg, dt_error_t *err) {
  dt_device_t *dev = NULL;
  saved_model_t sm;
  memset(&sm, 0, sizeof sm);
  dt_dataset_t ds = {0};
  dt_scaling_t scaling = {0};
  writer_t w = {.path = output};
  const char *format = NULL;
  const char **names = NULL;
  float *row = NULL;
  int rc = cmd_open_model(o, &dev, &sm, err);
  if (!rc) rc = model_data_load(&sm, &o->input, &ds, &scaling, &format, err);
  if (rc) goto out;
  dt_model_t *m = &sm.model;
  size_t dim = dt_model_output_size(m);
  bool probabilistic = m->loss == DT_LOSS_SOFTMAX_CE || m->loss == DT_LOSS_BCE_LOGITS;
  w.kind = kind_arg >= 0 ? (output_kind)kind_arg
                         : probabilistic ? KIND_PROBABILITIES : KIND_VALUES;
  if (w.kind != KIND_VALUES && !probabilistic) {
    rc = dt_error_set(err, DT_ERR_ARG, "--kind %s: the model in %s has loss %s, whose outputs "
                      "are values (use --kind values)", kind_names[w.kind], sm.dir,
                      dt_loss_names[m->loss]);
    goto out;
  }
  w.npy = strlen(output) >= 4 && strcasecmp(output + strlen(output) - 4, ".npy") == 0;
  w.n = ds.n;
  w.ints = w.kind == KIND_CLASSES;
  w.cols = w.kind == KIND_CLASSES && m->loss == DT_LOSS_SOFTMAX_CE ? 1 : dim;
  int nnames = 0;
  names = saved_model_class_names(&sm, &nnames);
  if (!(row = malloc(sizeof *row * dim))) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = writer_open(&w, &sm, err))) goto out;
  uint32_t *idx = malloc(sizeof *idx * (size_t)m->capacity);
  if (!idx) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto out;
  }
  dt_rng_t rng;
  dt_rng_seed(&rng, 1);
  double start = dt_now_s(), last = start;
  for (size_t pos = 0; pos < ds.n && !rc;) {
    int chunk = (int)(ds.n - pos < (size_t)m->capacity ? ds.n - pos : (size_t)m->capacity);
    for (int i = 0; i < chunk; i++) idx[i] = (uint32_t)(pos + (size_t)i);
    if ((rc = dt_dataset_gather(&ds, &scaling, idx, (size_t)chunk, m->acts[0], NULL, NULL, err)))
      break;
    const float *y = dt_model_forward(m, chunk, false, &rng);
    writer_rows(&w, &sm, y, chunk, dim, names, nnames, row);
    pos += (size_t)chunk;
    double now = dt_now_s();
    if (!o->quiet && now - last >= 2.0) {
      fprintf(stderr, "predict: %zu/%zu samples (%.0f%%), %.0f samples/s\n", pos, ds.n,
              100.0 * (double)pos / (double)ds.n, (double)pos / (now - start));
      last = now;
    }
  }
  free(idx);
  rc = writer_close(&w, rc, err);
  if (!rc && !o->quiet) {
    double secs = dt_now_s() - start;
    printf("Predicted %zu samples (%s, %s) with the model in %s (%s weights) in %.2f s: %s of "
           "shape (%zu%s", ds.n, ds.what, format, sm.dir, sm.weights, secs, kind_names[w.kind],
           ds.n, w.cols == 1 && w.ints ? ",)" : "");
    if (!(w.cols == 1 && w.ints)) printf(", %zu)", w.cols);
    printf(" written to %s\n", output);
  }
out:
  if (w.f) writer_close(&w, rc ? rc : DT_ERR_IO, err);
  free(row);
  free(names);
  dt_dataset_free(&ds);
  dt_scaling_free(&scaling);
  saved_model_free(&sm);
  dt_device_destroy(dev);
  return rc;
}

int cmd_predict_main(int argc, char **argv) {
  static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
                                           {"input", required_argument, 0, 'i'},
                                           {"output", required_argument, 0, 'o'},
                                           {"kind", required_argument, 0, 'k'},
                                           {"format", required_argument, 0, 'f'},
                                           {"set", required_argument, 0, 's'},
                                           {"limit", required_argument, 0, 'L'},
                                           {"batch-size", required_argument, 0, 'B'},
                                           {"threads", required_argument, 0, 'T'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  cmd_opts_t o = {0};
  const char *output = NULL;
  int kind = -1, c;
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  if (!sets) return CMD_EXIT_FAILED;
  o.sets = sets;
  opterr = 0;
  optind = 1;
  int code = -1;
  while (code < 0 && (c = getopt_long(argc, argv, ":m:i:o:k:f:s:qh", longopts, NULL)) != -1) {
    switch (c) {
      case 'm': o.model = optarg; break;
      case 'i': o.input.x = optarg; break;
      case 'o': output = optarg; break;
      case 'f': o.input.format = optarg; break;
      case 's': sets[o.nsets++] = optarg; break;
      case 'q': o.quiet = true; break;
      case 'k':
        for (int k = 0; kind_names[k]; k++)
          if (strcmp(optarg, kind_names[k]) == 0) kind = k;
        if (kind < 0) {
          fprintf(stderr, "dtrain-worker predict: --kind '%s': expected probabilities, classes "
                  "or values\n", optarg);
          code = CMD_EXIT_USAGE;
        }
        break;
      case 'L': if (!cmd_parse_count(PROG, "--limit", optarg, &o.input.limit)) code = 2; break;
      case 'B': if (!cmd_parse_count(PROG, "--batch-size", optarg, &o.batch_size)) code = 2; break;
      case 'T': if (!cmd_parse_count(PROG, "--threads", optarg, &o.threads)) code = 2; break;
      case 'h': usage(stdout); code = 0; break;
      case ':':
        fprintf(stderr, "dtrain-worker predict: option '%s' needs a value\n", argv[optind - 1]);
        code = CMD_EXIT_USAGE;
        break;
      default:
        fprintf(stderr, "dtrain-worker predict: unknown option '%s' (see predict --help)\n",
                argv[optind - 1]);
        code = CMD_EXIT_USAGE;
    }
  }
  if (code < 0 && optind < argc) {
    fprintf(stderr, "dtrain-worker predict: unexpected argument '%s' (see predict --help)\n",
            argv[optind]);
    code = CMD_EXIT_USAGE;
  }
  if (code < 0 && (!o.model || !o.input.x || !output)) {
    fprintf(stderr, "dtrain-worker predict: --model DIR, --input PATH and --output FILE are "
            "required (see predict --help)\n");
    code = CMD_EXIT_USAGE;
  }
  size_t olen = output ? strlen(output) : 0;
  if (code < 0 && !(olen > 4 && (strcasecmp(output + olen - 4, ".npy") == 0 ||
                                 strcasecmp(output + olen - 4, ".csv") == 0))) {
    fprintf(stderr, "dtrain-worker predict: --output '%s': the name must end in .npy or .csv\n",
            output);
    code = CMD_EXIT_USAGE;
  }
  if (code < 0) {
    dt_error_t err = {0};
    int rc = predict(&o, output, kind, &err);
    if (rc) fprintf(stderr, "dtrain-worker predict: error: %s\n", err.msg);
    code = rc ? cmd_exit_code(rc) : 0;
  }
  free(sets);
  return code;
}
