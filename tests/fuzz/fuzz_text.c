/* libFuzzer target for text datasets (src/io/text.c, text_tokens.c): TSV files of label
 * and text made by users' scripts from text in any language and any encoding.
 *
 * Input: byte 0 chooses the options, the rest is the file.
 *   bit 0:    tokens words or chars;
 *   bits 1-2: max_tokens 3, 5, 50 or 1000;
 *   bits 3-4: sequence_length 1, 2, 7 or 64;
 *   bit 5:    holdout_fraction 0 or 0.3.
 * The file lives in memory (memfd_create) and is read through /proc/self/fd/N.
 * Checked: a failure has a message and the code it returned; a dataset that loads has
 * ids below max_tokens and below its vocabulary's size, padding only at the end of a
 * row, class ids below num_classes, class names strictly ascending, a meta_json that
 * parses with "" and "[UNK]" first and no repeated token; the same file loaded with that
 * dataset's vocabulary (vocab_from, after the first dataset is freed) gives the same ids
 * and classes. Nothing may crash, read out of bounds or leak. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dtrain/json.h"
#include "dtrain/text.h"

static int fd = -1;
static char path[64];

static void put_file(const uint8_t *data, size_t len) {
  if (fd < 0) {
    if ((fd = memfd_create("fuzz_text", MFD_CLOEXEC)) < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len)) abort();
}

static int load(const dt_text_opts_t *o, dt_dataset_t *ds) {
  dt_error_t err = {0};
  int rc = dt_text_load(path, o, ds, &err);
  if (rc != 0 && (rc != err.code || !err.msg[0] || ds->owner)) abort();
  return rc;
}

/* The vocabulary's size, checked. */
static int check_meta(const dt_dataset_t *ds, long max_tokens) {
  size_t len = strlen(ds->meta_json);
  char *wrapped = malloc(len + 3);
  if (!wrapped) abort();
  snprintf(wrapped, len + 3, "{%s}", ds->meta_json);
  dt_json_t *j = NULL;
  dt_error_t err;
  if (dt_json_parse(wrapped, len + 2, "meta", &j, &err) != 0) abort();
  const dt_json_t *v = dt_json_get_typed(j, "vocabulary", DT_JSON_ARRAY);
  if (!v || v->count < 2 || v->count > max_tokens) abort();
  if (strcmp(v->child->string, "") != 0 || strcmp(v->child->next->string, "[UNK]") != 0) abort();
  for (const dt_json_t *a = v->child->next->next; a; a = a->next) {
    if (a->type != DT_JSON_STRING || !a->string[0]) abort();
    for (const dt_json_t *b = a->next; b; b = b->next)
      if (strcmp(a->string, b->string) == 0) abort();
  }
  int count = v->count;
  dt_json_free(j);
  free(wrapped);
  return count;
}

static void check(const dt_dataset_t *ds, long max_tokens, long seq_len) {
  if (ds->n < 1 || ds->dim != (size_t)seq_len || ds->x.type != DT_I32 || ds->y.type != DT_I32 ||
      !ds->integer_ids || ds->ykind != DT_Y_CLASSES || ds->num_classes < 1 || !ds->class_names ||
      ds->first_line != 1 || !ds->what)
    abort();
  int vocab = check_meta(ds, max_tokens);
  const int32_t *ids = ds->x.base, *y = ds->y.base;
  for (size_t i = 0; i < ds->n; i++) {
    bool padding = false;
    for (size_t k = 0; k < ds->dim; k++) {
      int32_t id = ids[i * ds->dim + k];
      if (id < 0 || id >= vocab || (padding && id != 0)) abort();
      padding = id == 0;
    }
    if (y[i] < 0 || y[i] >= ds->num_classes) abort();
  }
  for (int c = 1; c < ds->num_classes; c++)
    if (strcmp(ds->class_names[c - 1], ds->class_names[c]) >= 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const long max_tokens[4] = {3, 5, 50, 1000}, seq_len[4] = {1, 2, 7, 64};
  dt_text_opts_t o = {.tokens = data[0] & 1 ? DT_TOKENS_CHARS : DT_TOKENS_WORDS,
                      .max_tokens = max_tokens[data[0] >> 1 & 3],
                      .sequence_length = seq_len[data[0] >> 3 & 3],
                      .holdout_fraction = data[0] & 32 ? 0.3 : 0.0};
  put_file(data + 1, size - 1);
  dt_dataset_t train;
  if (load(&o, &train) != 0) return 0;
  check(&train, o.max_tokens, o.sequence_length);
  /* Copies of what the second load must reproduce, so that train can go first. */
  size_t n = train.n, nids = train.n * train.dim;
  int32_t *ids = malloc(nids * sizeof *ids), *y = malloc(n * sizeof *y);
  if (!ids || !y) abort();
  memcpy(ids, train.x.base, nids * sizeof *ids);
  memcpy(y, train.y.base, n * sizeof *y);
  dt_text_opts_t again = {.vocab_from = &train};
  dt_dataset_t test;
  if (load(&again, &test) != 0) abort();
  dt_dataset_free(&train);
  check(&test, o.max_tokens, o.sequence_length);
  if (test.n != n || memcmp(test.x.base, ids, nids * sizeof *ids) != 0 ||
      memcmp(test.y.base, y, n * sizeof *y) != 0)
    abort();
  dt_dataset_free(&test);
  free(ids);
  free(y);
  return 0;
}
