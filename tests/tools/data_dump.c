/* data_dump: loads a NumPy or IDX dataset the way dtrain does and prints what it got, so
 * that a script test can compare it with what numpy wrote (tests/cli/test_data_numpy.sh).
 *
 * usage: data_dump (--npy SPEC | --idx PATH) [--targets-npy SPEC | --targets-idx PATH]
 *                  [--values | --sum]
 *   Prints "n N", "shape (a, b)", "dtype T", "dim D" (and "ydim Y", "ytype T" with
 *   targets joined by dt_dataset_join_targets). --values then prints every sample as
 *   gathered by dt_dataset_gather: "x I: " and the float32 bit patterns in hex, and
 *   "y I: ..." for the targets. --sum gathers every sample once, in batches, and prints
 *   "sum S" (the gathered floats summed in double), then "rss_anon_kb K", the process's
 *   anonymous memory (RssAnon of /proc/self/status) after it, which a file-backed map
 *   does not count. Errors go to stderr with exit status 1. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/data.h"
#include "dtrain/idx.h"
#include "dtrain/numpy.h"

static int load(const char *spec, int idx, dt_dataset_t *ds, dt_error_t *err) {
  return idx ? dt_idx_load(spec, ds, err) : dt_numpy_load(spec, ds, err);
}

static void print_bits(const char *tag, size_t i, const float *v, size_t count) {
  printf("%s %zu:", tag, i);
  for (size_t j = 0; j < count; j++) {
    uint32_t b;
    memcpy(&b, &v[j], sizeof b);
    printf(" %08" PRIx32, b);
  }
  printf("\n");
}

static long rss_anon_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "RssAnon: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  const char *spec = NULL, *tspec = NULL;
  int idx = 0, tidx = 0, values = 0, sum = 0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && (!strcmp(argv[i], "--npy") || !strcmp(argv[i], "--idx"))) {
      idx = !strcmp(argv[i], "--idx");
      spec = argv[++i];
    } else if (i + 1 < argc && (!strcmp(argv[i], "--targets-npy") ||
                                !strcmp(argv[i], "--targets-idx"))) {
      tidx = !strcmp(argv[i], "--targets-idx");
      tspec = argv[++i];
    } else if (!strcmp(argv[i], "--values")) {
      values = 1;
    } else if (!strcmp(argv[i], "--sum")) {
      sum = 1;
    } else {
      spec = NULL;
      break;
    }
  }
  if (!spec) {
    fprintf(stderr, "usage: data_dump (--npy SPEC | --idx PATH) [--targets-npy SPEC | "
                    "--targets-idx PATH] [--values | --sum]\n");
    return 2;
  }
  dt_error_t err = {0};
  dt_dataset_t ds, ys;
  if (load(spec, idx, &ds, &err)) {
    fprintf(stderr, "error: %s\n", err.msg);
    return 1;
  }
  if (tspec) {
    if (load(tspec, tidx, &ys, &err) || dt_dataset_join_targets(&ds, &ys, &err)) {
      fprintf(stderr, "error: %s\n", err.msg);
      dt_dataset_free(&ys);
      dt_dataset_free(&ds);
      return 1;
    }
  }
  printf("n %zu\nshape (", ds.n);
  for (int d = 0; d < ds.ndim; d++) printf("%s%d", d ? ", " : "", ds.shape[d]);
  printf("%s)\ndtype %s\ndim %zu\n", ds.ndim == 1 ? "," : "", dt_dtype_name(ds.x.type), ds.dim);
  size_t ydim = ds.ykind == DT_Y_NONE ? 0 : ds.y.row;
  if (ydim) printf("ydim %zu\nytype %s\n", ydim, dt_dtype_name(ds.y.type));

  enum { BATCH = 256 };
  float *x = malloc(BATCH * (ds.dim ? ds.dim : 1) * sizeof *x);
  float *y = malloc(BATCH * (ydim ? ydim : 1) * sizeof *y);
  uint32_t idxs[BATCH];
  double total = 0;
  int rc = x && y ? 0 : 1;
  for (size_t first = 0; !rc && (values || sum) && first < ds.n; first += BATCH) {
    size_t count = ds.n - first < BATCH ? ds.n - first : BATCH;
    for (size_t k = 0; k < count; k++) idxs[k] = (uint32_t)(first + k);
    if (dt_dataset_gather(&ds, NULL, idxs, count, x, NULL, ydim ? y : NULL, &err)) {
      fprintf(stderr, "error: %s\n", err.msg);
      rc = 1;
      break;
    }
    for (size_t k = 0; k < count; k++) {
      if (values) {
        print_bits("x", first + k, x + k * ds.dim, ds.dim);
        if (ydim) print_bits("y", first + k, y + k * ydim, ydim);
      }
      for (size_t j = 0; sum && j < ds.dim; j++) total += x[k * ds.dim + j];
    }
  }
  if (sum && !rc) printf("sum %.17g\nrss_anon_kb %ld\n", total, rss_anon_kb());
  free(x);
  free(y);
  dt_dataset_free(&ds);
  return rc;
}
