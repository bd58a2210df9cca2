/* ckpt_edit SRC ROOT NAME FILE FROM TO: copies checkpoint directory SRC into a new
 * checkpoint ROOT/NAME (which `latest` then names), with the first FROM in FILE
 * replaced by TO, and a manifest whose sizes and checksums fit the edited file. For
 * tests of what resuming does with values a checksum cannot catch: a hand-edited file
 * that is intact as a file. Exits 0 on success, 1 with a message otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "dtrain/json.h"

static int die(const char *msg) {
  fprintf(stderr, "ckpt_edit: %s\n", msg);
  return 1;
}

/* Replaces the first `from` in *data (len bytes) by `to`; the buffer is reallocated. */
static int replace(void **data, size_t *len, const char *from, const char *to) {
  char *d = *data, *at = NULL;
  size_t fl = strlen(from), tl = strlen(to);
  for (size_t i = 0; i + fl <= *len && !at; i++)
    if (memcmp(d + i, from, fl) == 0) at = d + i;
  if (!at) return -1;
  size_t before = (size_t)(at - d), after = *len - before - fl;
  char *out = malloc(before + tl + after + 1);
  if (!out) return -1;
  memcpy(out, d, before);
  memcpy(out + before, to, tl);
  memcpy(out + before + tl, at + fl, after);
  out[before + tl + after] = '\0';
  free(d);
  *data = out;
  *len = before + tl + after;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) return die("usage: ckpt_edit SRC ROOT NAME FILE FROM TO");
  const char *src = argv[1], *root = argv[2], *name = argv[3], *file = argv[4];
  dt_error_t err = {0};
  void *text;
  size_t len;
  dt_json_t *manifest;
  char info[65536];
  if (dt_ckpt_read_file(src, "manifest.json", &text, &len, &err) ||
      dt_json_parse(text, len, "manifest.json", &manifest, &err) ||
      dt_ckpt_read_info(src, info, sizeof info, &err))
    return die(err.msg);
  free(text);
  dt_ckpt_writer_t *w;
  if (dt_ckpt_begin(root, name, &w, &err)) return die(err.msg);
  const dt_json_t *files = dt_json_get_typed(manifest, "files", DT_JSON_ARRAY);
  bool edited = false;
  for (const dt_json_t *f = files ? files->child : NULL; f; f = f->next) {
    const dt_json_t *fname = dt_json_get_typed(f, "name", DT_JSON_STRING);
    void *data;
    if (!fname || dt_ckpt_read_file(src, fname->string, &data, &len, &err)) {
      dt_ckpt_abort(w);
      return die(fname ? err.msg : "a file entry without a name");
    }
    if (strcmp(fname->string, file) == 0) {
      if (replace(&data, &len, argv[5], argv[6]) != 0) {
        dt_ckpt_abort(w);
        return die("FROM not found in FILE");
      }
      edited = true;
    }
    int rc = dt_ckpt_add_file(w, fname->string, data, len, &err);
    free(data);
    if (rc) {
      dt_ckpt_abort(w);
      return die(err.msg);
    }
  }
  dt_json_free(manifest);
  if (!edited) {
    dt_ckpt_abort(w);
    return die("FILE is not in the checkpoint");
  }
  if (dt_ckpt_commit(w, info, 0, &err)) return die(err.msg);
  return 0;
}
