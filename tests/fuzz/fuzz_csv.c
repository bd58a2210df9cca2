/* libFuzzer target for CSV datasets (src/io/csv.c): CSV files come from users,
 * spreadsheets and scripts, so any bytes may be in them.
 *
 * Input: byte 0 chooses the columns, the rest is the file.
 *   bits 0-1: targets NULL, "y", "a,y" or "b";
 *   bits 2-3: features NULL, "a", "b,a" or "x";
 *   bit 4:    also make the targets class ids (dt_dataset_targets_as_classes).
 * The file lives in memory (memfd_create) and is read through /proc/self/fd/N.
 * Checked: a failure has a message and the code it returned; a dataset that loads has at
 * least one row, its shape, finite values only, valid meta_json, class ids below
 * num_classes; a file without CR read again with CRLF line ends gives the same answer
 * and the same values. Nothing may crash, read out of bounds or leak. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dtrain/csv.h"
#include "dtrain/json.h"

static int fd = -1;
static char path[64];

static void put_file(const uint8_t *data, size_t len) {
  if (fd < 0) {
    if ((fd = memfd_create("fuzz_csv", MFD_CLOEXEC)) < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len)) abort();
}

static int load(const uint8_t *data, size_t len, const dt_csv_opts_t *o, bool classes,
                dt_dataset_t *ds) {
  put_file(data, len);
  dt_error_t err = {0};
  int rc = dt_csv_load(path, o, ds, &err);
  if (rc == 0 && classes) {
    rc = dt_dataset_targets_as_classes(ds, &err);
    if (rc) dt_dataset_free(ds);
  }
  if (rc != 0 && (rc != err.code || !err.msg[0] || ds->owner)) abort();
  return rc;
}

static void check(const dt_dataset_t *ds) {
  if (ds->n < 1 || ds->dim < 1 || ds->ndim != 1 || (size_t)ds->shape[0] != ds->dim ||
      ds->x.type != DT_F32 || ds->x.row != ds->dim || !ds->x.base || ds->first_line < 2 ||
      !ds->what || !ds->meta_json)
    abort();
  for (size_t i = 0; i < ds->n; i++) {
    for (size_t j = 0; j < ds->dim; j++)
      if (!isfinite(dt_array_get(&ds->x, i, j))) abort();
    if (ds->ykind == DT_Y_CLASSES) {
      double c = dt_array_get(&ds->y, i, 0);
      if (c < 0 || c >= ds->num_classes) abort();
    } else {
      for (size_t j = 0; j < ds->y.row; j++)
        if (!isfinite(dt_array_get(&ds->y, i, j))) abort();
    }
  }
  size_t len = strlen(ds->meta_json);
  char *wrapped = malloc(len + 3);
  if (!wrapped) abort();
  snprintf(wrapped, len + 3, "{%s}", ds->meta_json);
  dt_json_t *j = NULL;
  dt_error_t err;
  if (dt_json_parse(wrapped, len + 2, "meta", &j, &err) != 0) abort();
  const dt_json_t *f = dt_json_get_typed(j, "features", DT_JSON_ARRAY);
  if (!f || (size_t)f->count != ds->dim) abort();
  dt_json_free(j);
  free(wrapped);
}

static bool same_values(const dt_dataset_t *a, const dt_dataset_t *b) {
  if (a->n != b->n || a->dim != b->dim || a->y.row != b->y.row || a->ykind != b->ykind ||
      a->first_line != b->first_line)
    return false;
  if (memcmp(a->x.base, b->x.base, a->n * a->dim * sizeof(float)) != 0) return false;
  return a->ykind == DT_Y_NONE ||
         memcmp(a->y.base, b->y.base, a->n * a->y.row * sizeof(float)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const char *const targets[4] = {NULL, "y", "a,y", "b"};
  static const char *const features[4] = {NULL, "a", "b,a", "x"};
  dt_csv_opts_t o = {targets[data[0] & 3], features[data[0] >> 2 & 3]};
  bool classes = data[0] & 16;
  data++;
  size--;
  dt_dataset_t ds;
  int rc = load(data, size, &o, classes, &ds);
  if (rc == 0) check(&ds);
  if (!memchr(data, '\r', size)) {
    /* The same file with CRLF line ends. */
    size_t lf = 0;
    for (size_t i = 0; i < size; i++) lf += data[i] == '\n';
    uint8_t *crlf = malloc(size + lf + 1);
    if (!crlf) abort();
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
      if (data[i] == '\n') crlf[n++] = '\r';
      crlf[n++] = data[i];
    }
    dt_dataset_t again;
    int rc2 = load(crlf, n, &o, classes, &again);
    if (rc2 != rc) abort();
    if (rc == 0) {
      if (!same_values(&ds, &again)) abort();
      dt_dataset_free(&again);
    }
    free(crlf);
  }
  if (rc == 0) dt_dataset_free(&ds);
  return 0;
}
