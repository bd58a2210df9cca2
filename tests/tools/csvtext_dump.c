/* Loads a CSV or a text (TSV) dataset and prints what it holds, for the script tests
 * (tests/cli/test_data_csv_text.sh) that compare it with what Python parsed, and times a
 * load for the benchmark figures.
 *
 * usage: csvtext_dump csv FILE [-t TARGETS] [-f FEATURES] [-c] [-q]
 *        csvtext_dump text FILE -k words|chars -m MAX_TOKENS -l SEQUENCE_LENGTH
 *                     [-H HOLDOUT_FRACTION] [-v TRAIN_FILE] [-q]
 *   -c  csv: make the targets class ids (dt_dataset_targets_as_classes)
 *   -v  text: load TRAIN_FILE with the options first, then FILE with its vocabulary; the
 *       training set is freed before FILE's dataset is printed
 *   -q  print only "rows N seconds S rows/s R"
 * Prints "n", "dim", "shape", "first_line", "integer_ids", "ykind", "ydim",
 * "num_classes", "class I NAME", "meta JSON", then "x I v..." and "y I v..." per sample
 * (floats as %.9g, which reads back to the same float32). An error goes to stderr as
 * "error: MESSAGE" with exit status 1. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtrain/csv.h"
#include "dtrain/text.h"

static void print_row(const char *tag, const dt_array_t *a, size_t i, size_t row) {
  printf("%s %zu", tag, i);
  for (size_t j = 0; j < a->row; j++) {
    double v = dt_array_get(a, row, j);
    if (a->type == DT_I32) printf(" %d", (int)v);
    else printf(" %.9g", v);
  }
  printf("\n");
}

static void dump(const dt_dataset_t *ds) {
  static const char *const kinds[] = {"none", "classes", "values"};
  printf("n %zu\ndim %zu\nshape", ds->n, ds->dim);
  for (int i = 0; i < ds->ndim; i++) printf(" %d", ds->shape[i]);
  printf("\nfirst_line %zu\ninteger_ids %d\nykind %s\nydim %zu\nnum_classes %d\n",
         ds->first_line, (int)ds->integer_ids, kinds[ds->ykind], ds->y.row, ds->num_classes);
  printf("xtype %s\nytype %s\nwhat %s\n", dt_dtype_name(ds->x.type), dt_dtype_name(ds->y.type),
         ds->what);
  for (int c = 0; ds->class_names && c < ds->num_classes; c++)
    printf("class %d %s\n", c, ds->class_names[c]);
  printf("meta %s\n", ds->meta_json ? ds->meta_json : "");
  for (size_t i = 0; i < ds->n; i++) {
    print_row("x", &ds->x, i, ds->first + i);
    if (ds->ykind != DT_Y_NONE) print_row("y", &ds->y, i, ds->first + i);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int failed(int rc, const dt_error_t *err) {
  fprintf(stderr, "error: %s\n", err->msg);
  if (rc != err->code) fprintf(stderr, "error: returned %d but the message's code is %d\n", rc, err->code);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "csv") != 0 && strcmp(argv[1], "text") != 0)) {
    fprintf(stderr, "usage: csvtext_dump csv|text FILE [options] (see the source)\n");
    return 2;
  }
  bool text = strcmp(argv[1], "text") == 0, classes = false, quiet = false;
  const char *path = argv[2], *train = NULL;
  dt_csv_opts_t co = {0};
  dt_text_opts_t to = {.max_tokens = 0, .sequence_length = 0};
  int opt;
  optind = 3;
  while ((opt = getopt(argc, argv, "t:f:cqk:m:l:H:v:")) != -1) {
    switch (opt) {
      case 't': co.targets = optarg; break;
      case 'f': co.features = optarg; break;
      case 'c': classes = true; break;
      case 'q': quiet = true; break;
      case 'k': to.tokens = strcmp(optarg, "chars") == 0 ? DT_TOKENS_CHARS : DT_TOKENS_WORDS; break;
      case 'm': to.max_tokens = strtol(optarg, NULL, 10); break;
      case 'l': to.sequence_length = strtol(optarg, NULL, 10); break;
      case 'H': to.holdout_fraction = strtod(optarg, NULL); break;
      case 'v': train = optarg; break;
      default: return 2;
    }
  }
  dt_dataset_t ds, tr;
  dt_error_t err = {0};
  int rc;
  double t0 = now();
  if (!text) {
    rc = dt_csv_load(path, &co, &ds, &err);
    if (!rc && classes) {
      rc = dt_dataset_targets_as_classes(&ds, &err);
      if (rc) dt_dataset_free(&ds);
    }
  } else if (train) {
    if ((rc = dt_text_load(train, &to, &tr, &err))) return failed(rc, &err);
    dt_text_opts_t test = to;
    test.vocab_from = &tr;
    rc = dt_text_load(path, &test, &ds, &err);
    dt_dataset_free(&tr);
  } else {
    rc = dt_text_load(path, &to, &ds, &err);
  }
  double secs = now() - t0;
  if (rc) return failed(rc, &err);
  if (quiet)
    printf("rows %zu seconds %.3f rows/s %.0f\n", ds.n, secs, (double)ds.n / (secs > 0 ? secs : 1e-9));
  else
    dump(&ds);
  dt_dataset_free(&ds);
  return 0;
}
