/* Checkpoint files: the JSON reader, the safetensors encoder/decoder, and checkpoint
 * directories (commit, latest, pruning, best, verification of corrupt and truncated
 * files, the fallback to an older checkpoint, and write failures that must leave
 * `latest` alone), and writing and reading in one pass straight from and into the
 * tensors' buffers. Runs in a fresh temporary directory. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/checkpoint.h"
#include "dtrain/crc32c.h"
#include "dtrain/json.h"
#include "test_util.h"

static char root[256];

static void test_json(void) {
  dt_error_t err = {0};
  dt_json_t *j;
  const char *text =
      "{\"a\": [1, 2.5, -3e2], \"s\": \"x\\\"y\\\\z\\n\\u00e9\\ud83d\\ude00\", \"t\": true, "
      "\"f\": false, \"n\": null, \"o\": {}}";
  CHECK_INT_EQ(dt_json_parse(text, strlen(text), "t", &j, &err), 0);
  const dt_json_t *a = dt_json_get_typed(j, "a", DT_JSON_ARRAY);
  CHECK(a && a->count == 3);
  if (a && a->count == 3) {
    CHECK_NEAR(a->child->number, 1.0, 0);
    CHECK_NEAR(a->child->next->number, 2.5, 0);
    CHECK_NEAR(a->child->next->next->number, -300.0, 0);
  }
  const dt_json_t *s = dt_json_get_typed(j, "s", DT_JSON_STRING);
  CHECK(s && strcmp(s->string, "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80") == 0);
  CHECK(dt_json_get_typed(j, "t", DT_JSON_BOOL)->boolean == true);
  CHECK(dt_json_get_typed(j, "f", DT_JSON_BOOL)->boolean == false);
  CHECK(dt_json_get_typed(j, "n", DT_JSON_NULL) != NULL);
  CHECK(dt_json_get_typed(j, "o", DT_JSON_OBJECT) != NULL);
  CHECK(dt_json_get(j, "missing") == NULL);
  dt_json_free(j);

  /* Malformed inputs are errors that say where, never crashes. */
  static const char *const bad[] = {"{", "{\"a\":}", "[1,]", "\"abc", "{\"a\" 1}", "tru",
                                    "[1] x", "{\"a\":1,}", "\"\\q\"", "1e999", "[\"\\u12\"]", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    dt_error_clear(&err);
    int rc = dt_json_parse(bad[i], strlen(bad[i]), "bad.json", &j, &err);
    CHECK_INT_EQ(rc, DT_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.msg, "bad.json: bad JSON at byte");
  }
  /* Deep nesting is refused, not recursed into. */
  char deep[400];
  memset(deep, '[', sizeof deep);
  CHECK_INT_EQ(dt_json_parse(deep, sizeof deep, "deep", &j, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "nested too deeply");

  /* A high surrogate pairs only with a low one (found while writing tests/fuzz/fuzz_json):
   * "\ud800\u0041" is a lone surrogate and an 'A', not one made-up character. */
  static const char *const lone[][2] = {
      {"\"\\ud800\\u0041\"", "\xed\xa0\x80" "A"},
      {"\"\\udbff\\ue000\"", "\xed\xaf\xbf\xee\x80\x80"},
      {"\"\\ud800\\ud800\\udc00\"", "\xed\xa0\x80\xf0\x90\x80\x80"},
      {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"}};
  for (size_t i = 0; i < sizeof lone / sizeof lone[0]; i++) {
    int rc = dt_json_parse(lone[i][0], strlen(lone[i][0]), "lone", &j, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc) continue;
    bool same = j->type == DT_JSON_STRING && strcmp(j->string, lone[i][1]) == 0;
    if (!same) fprintf(stderr, "%s decoded to the wrong bytes\n", lone[i][0]);
    CHECK(same);
    dt_json_free(j);
  }

  char q[64];
  CHECK_INT_EQ(dt_json_quote("a\"b\\c\n\x01", q, sizeof q), 17);
  CHECK(strcmp(q, "\"a\\\"b\\\\c\\n\\u0001\"") == 0);
}

/* Two tensors in one buffer: "l.kernel" (2, 3) at 0, "l.bias" (3) at 6. */
static dt_param_info_t tensors[2];
static float values[9];

static void make_tensors(void) {
  memset(tensors, 0, sizeof tensors);
  snprintf(tensors[0].name, sizeof tensors[0].name, "l.kernel");
  tensors[0].shape = (dt_shape_t){2, {2, 3, 1, 1}};
  tensors[0].count = 6;
  snprintf(tensors[1].name, sizeof tensors[1].name, "l.bias");
  tensors[1].shape = dt_shape_1d(3);
  tensors[1].offset = 6;
  tensors[1].count = 3;
  for (int i = 0; i < 9; i++) values[i] = 0.5f * (float)i - 1.25f;
}

static void test_safetensors(void) {
  dt_error_t err = {0};
  void *file;
  size_t len;
  const char *meta[] = {"step", "42", "note", "a \"quoted\" value", NULL};
  CHECK_INT_EQ(dt_safetensors_encode(tensors, 2, values, meta, &file, &len, &err), 0);
  uint64_t hlen;
  memcpy(&hlen, file, 8);
  CHECK_INT_EQ(hlen % 8, 0);
  CHECK_INT_EQ(len, 8 + hlen + 9 * sizeof(float));
  /* The header is the JSON the format defines, data right after it. */
  dt_json_t *h;
  CHECK_INT_EQ(dt_json_parse((char *)file + 8, (size_t)hlen, "hdr", &h, &err), 0);
  const dt_json_t *k = dt_json_get_typed(h, "l.kernel", DT_JSON_OBJECT);
  const dt_json_t *b = dt_json_get_typed(h, "l.bias", DT_JSON_OBJECT);
  CHECK(k && b);
  if (k && b) {
    CHECK(strcmp(dt_json_get_typed(k, "dtype", DT_JSON_STRING)->string, "F32") == 0);
    const dt_json_t *shape = dt_json_get_typed(k, "shape", DT_JSON_ARRAY);
    CHECK(shape->count == 2 && shape->child->number == 2 && shape->child->next->number == 3);
    const dt_json_t *offs = dt_json_get_typed(b, "data_offsets", DT_JSON_ARRAY);
    CHECK(offs->child->number == 24 && offs->child->next->number == 36);
  }
  dt_json_free(h);
  CHECK(memcmp((char *)file + 8 + hlen, values, sizeof values) == 0);
  char v[64];
  CHECK_INT_EQ(dt_safetensors_metadata(file, len, "note", v, sizeof v, &err), 0);
  CHECK(strcmp(v, "a \"quoted\" value") == 0);
  CHECK_INT_EQ(dt_safetensors_metadata(file, len, "absent", v, sizeof v, &err), DT_ERR_NOT_FOUND);

  /* Round trip, in a different tensor order than the file's. */
  float back[9] = {0};
  dt_param_info_t swapped[2] = {tensors[1], tensors[0]};
  CHECK_INT_EQ(dt_safetensors_decode(file, len, swapped, 2, back, "f", &err), 0);
  CHECK(memcmp(back, values, sizeof values) == 0);

  /* Another model's shapes, a missing tensor, an extra tensor, truncation, a huge
   * header length: each refused with a message naming the file and the tensor. */
  dt_param_info_t other[2] = {tensors[0], tensors[1]};
  other[1].shape = dt_shape_1d(4);
  other[1].count = 4;
  CHECK_INT_EQ(dt_safetensors_decode(file, len, other, 2, back, "m.st", &err), DT_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.msg, "m.st: tensor 'l.bias' has another shape");
  dt_param_info_t more[3] = {tensors[0], tensors[1], tensors[1]};
  snprintf(more[2].name, sizeof more[2].name, "l.extra");
  CHECK_INT_EQ(dt_safetensors_decode(file, len, more, 3, back, "m.st", &err), DT_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.msg, "tensor 'l.extra' of the model is missing");
  CHECK_INT_EQ(dt_safetensors_decode(file, len, tensors, 1, back, "m.st", &err), DT_ERR_SHAPE);
  CHECK_STR_CONTAINS(err.msg, "holds tensor 'l.bias', which this model does not have");
  CHECK_INT_EQ(dt_safetensors_decode(file, len - 4, tensors, 2, back, "m.st", &err),
               DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "data offsets");
  unsigned char *bad = malloc(len);
  memcpy(bad, file, len);
  uint64_t huge = 1ull << 32;
  memcpy(bad, &huge, 8);
  CHECK_INT_EQ(dt_safetensors_decode(bad, len, tensors, 2, back, "m.st", &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "header length 4294967296 does not fit");
  CHECK_INT_EQ(dt_safetensors_decode(bad, 5, tensors, 2, back, "m.st", &err), DT_ERR_FORMAT);
  free(bad);
  free(file);

  /* Data offsets that are not whole numbers (found by tests/fuzz/fuzz_safetensors): the
   * bias at [23.5, 35.5) was read from byte 23, and [23, 35.5) passed as 12 bytes. */
  static const char *const fractional[] = {"[23.5,35.5]", "[23,35.5]", "[23.75,35.875]"};
  for (int i = 0; i < 3; i++) {
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"l.kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                      "\"l.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":%s}}",
                      fractional[i]);
    uint64_t h = (uint64_t)hl;
    unsigned char st[8 + 256 + sizeof values];
    memcpy(st, &h, 8);
    memcpy(st + 8, hdr, (size_t)hl);
    memcpy(st + 8 + hl, values, sizeof values);
    CHECK_INT_EQ(dt_safetensors_decode(st, 8 + (size_t)hl + sizeof values, tensors, 2, back,
                                       "frac.st", &err), DT_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.msg, "frac.st: tensor 'l.bias' has data offsets");
  }

  /* A file that names one tensor twice and another not at all (issue 14, defect 10):
   * the count of entries matches, but the missing tensor must not silently keep the
   * value it had. Two tensors of one shape, then "l.bb" renamed "l.aa" in the header. */
  dt_param_info_t twins[2] = {tensors[1], tensors[1]};
  snprintf(twins[0].name, sizeof twins[0].name, "l.aa");
  snprintf(twins[1].name, sizeof twins[1].name, "l.bb");
  twins[0].offset = 0;
  twins[1].offset = 3;
  CHECK_INT_EQ(dt_safetensors_encode(twins, 2, values, NULL, &file, &len, &err), 0);
  char *name = memmem(file, len, "\"l.bb\"", 6);
  CHECK(name != NULL);
  if (name) memcpy(name, "\"l.aa\"", 6);
  CHECK_INT_EQ(dt_safetensors_decode(file, len, twins, 2, back, "twice.st", &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "twice.st: tensor 'l.aa' appears twice");
  free(file);
}

/* Commits checkpoint `name` holding values scaled by `scale`. */
static int commit(const char *name, float scale, int keep, dt_error_t *err) {
  dt_ckpt_writer_t *w;
  int rc = dt_ckpt_begin(root, name, &w, err);
  if (rc) return rc;
  float v[9];
  for (int i = 0; i < 9; i++) v[i] = values[i] * scale;
  void *file;
  size_t len;
  if ((rc = dt_safetensors_encode(tensors, 2, v, NULL, &file, &len, err))) {
    dt_ckpt_abort(w);
    return rc;
  }
  rc = dt_ckpt_add_file(w, "model.safetensors", file, len, err);
  free(file);
  if (!rc) rc = dt_ckpt_add_file(w, "note.txt", name, strlen(name), err);
  if (rc) {
    dt_ckpt_abort(w);
    return rc;
  }
  char info[64];
  snprintf(info, sizeof info, "{\"scale\": %g}", scale);
  return dt_ckpt_commit(w, info, keep, err);
}

static bool path_exists(const char *rel) {
  char p[512];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", root, rel);
  return stat(p, &st) == 0;
}

static void read_text(const char *rel, char *buf, size_t cap) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  buf[0] = '\0';
  FILE *f = fopen(p, "r");
  if (!f) return;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Flips one byte of a file (relative to root) at offset. */
static void flip_byte(const char *rel, long offset) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  FILE *f = fopen(p, "r+b");
  if (!f) return;
  fseek(f, offset, SEEK_SET);
  int c = fgetc(f);
  fseek(f, offset, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

static void test_directories(void) {
  dt_error_t err = {0};
  char text[4096], dir[DT_CKPT_PATH_MAX];
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = true;
  FILE *warnings = tmpfile();
  log.err = warnings;

  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), DT_ERR_NOT_FOUND);
  CHECK_INT_EQ(commit("ckpt-01", 1.0f, 3, &err), 0);
  read_text("latest", text, sizeof text);
  CHECK(strcmp(text, "ckpt-01\n") == 0);
  CHECK(!path_exists(".tmp-ckpt-01"));
  char sub[300];
  snprintf(sub, sizeof sub, "%s/ckpt-01", root);
  CHECK_INT_EQ(dt_ckpt_verify(sub, &err), 0);
  CHECK_INT_EQ(dt_ckpt_read_info(sub, text, sizeof text, &err), 0);
  CHECK(strcmp(text, "{\"scale\": 1}") == 0);

  /* Pruning keeps the newest 3 and the one `best` names. */
  CHECK_INT_EQ(dt_ckpt_set_best(root, "ckpt-01", &err), 0);
  for (int i = 2; i <= 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "ckpt-%02d", i);
    CHECK_INT_EQ(commit(name, (float)i, 3, &err), 0);
  }
  CHECK(path_exists("ckpt-01") && !path_exists("ckpt-02"));
  CHECK(path_exists("ckpt-03") && path_exists("ckpt-04") && path_exists("ckpt-05"));
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
  CHECK_STR_CONTAINS(dir, "/ckpt-05");

  /* A flipped byte in the newest one: reported, and the one before it is used. */
  flip_byte("ckpt-05/model.safetensors", 40);
  snprintf(sub, sizeof sub, "%s/ckpt-05", root);
  CHECK_INT_EQ(dt_ckpt_verify(sub, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "ckpt-05/model.safetensors: CRC32C");
  CHECK_STR_CONTAINS(err.msg, "(corrupt)");
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
  CHECK_STR_CONTAINS(dir, "/ckpt-04");

  /* A truncated file in that one too: the next older. */
  char p[512];
  snprintf(p, sizeof p, "%s/ckpt-04/note.txt", root);
  CHECK_INT_EQ(truncate(p, 2), 0);
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
  CHECK_STR_CONTAINS(dir, "/ckpt-03");
  /* A corrupt manifest is caught by its own CRC. */
  flip_byte("ckpt-03/manifest.json", 60);
  snprintf(sub, sizeof sub, "%s/ckpt-03", root);
  CHECK_INT_EQ(dt_ckpt_verify(sub, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "manifest.json: CRC32C");
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
  CHECK_STR_CONTAINS(dir, "/ckpt-01");
  /* The warnings name every skipped checkpoint and why. */
  fflush(warnings);
  rewind(warnings);
  size_t n = fread(text, 1, sizeof text - 1, warnings);
  text[n] = '\0';
  CHECK_STR_CONTAINS(text, "checkpoint ckpt-05 (latest) cannot be used");
  CHECK_STR_CONTAINS(text, "ckpt-04/note.txt: 2 bytes, the manifest says 7");
  CHECK_STR_CONTAINS(text, "resuming from the older checkpoint");
  fclose(warnings);

  /* A missing file listed in the manifest. */
  snprintf(p, sizeof p, "%s/ckpt-01/note.txt", root);
  unlink(p);
  snprintf(sub, sizeof sub, "%s/ckpt-01", root);
  CHECK_INT_EQ(dt_ckpt_verify(sub, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "note.txt: missing");
  log.err = fopen("/dev/null", "w");
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "no usable checkpoint in");
  fclose(log.err);

  /* A stale temporary directory from a crash is replaced; abort removes its own. */
  char stale[300];
  snprintf(stale, sizeof stale, "%s/.tmp-ckpt-06", root);
  mkdir(stale, 0755);
  CHECK_INT_EQ(commit("ckpt-06", 6.0f, 0, &err), 0);
  CHECK(!path_exists(".tmp-ckpt-06"));
  dt_ckpt_writer_t *w;
  CHECK_INT_EQ(dt_ckpt_begin(root, "ckpt-07", &w, &err), 0);
  CHECK(path_exists(".tmp-ckpt-07"));
  dt_ckpt_abort(w);
  CHECK(!path_exists(".tmp-ckpt-07"));
  /* Re-committing an existing name replaces it whole. */
  CHECK_INT_EQ(commit("ckpt-06", 7.0f, 0, &err), 0);
  snprintf(sub, sizeof sub, "%s/ckpt-06", root);
  CHECK_INT_EQ(dt_ckpt_read_info(sub, text, sizeof text, &err), 0);
  CHECK(strcmp(text, "{\"scale\": 7}") == 0);
  CHECK(!path_exists(".trash-ckpt-06"));
  CHECK_INT_EQ(dt_ckpt_begin(root, "../evil", &w, &err), DT_ERR_ARG);
}

/* A write that fails (here: RLIMIT_FSIZE makes write() return EFBIG, as a full disk
 * would return ENOSPC) is reported with the path, and `latest` stays as it was. */
static void test_write_failure(void) {
  dt_error_t err = {0};
  char text[256];
  read_text("latest", text, sizeof text);
  CHECK(strcmp(text, "ckpt-06\n") == 0);
  struct rlimit old, small = {.rlim_cur = 64};
  getrlimit(RLIMIT_FSIZE, &old);
  small.rlim_max = old.rlim_max;
  signal(SIGXFSZ, SIG_IGN);
  CHECK_INT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  int rc = commit("ckpt-08", 8.0f, 0, &err);
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK_INT_EQ(rc, DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "cannot write");
  CHECK_STR_CONTAINS(err.msg, "model.safetensors");
  read_text("latest", text, sizeof text);
  CHECK(strcmp(text, "ckpt-06\n") == 0);
  CHECK(!path_exists("ckpt-08") && !path_exists(".tmp-ckpt-08"));

  /* A root that cannot be created: a file is in the way. */
  char p[300];
  snprintf(p, sizeof p, "%s/afile", root);
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
  dt_ckpt_writer_t *w;
  snprintf(p, sizeof p, "%s/afile/sub", root);
  CHECK_INT_EQ(dt_ckpt_begin(p, "ckpt-01", &w, &err), DT_ERR_IO);
  CHECK_STR_CONTAINS(err.msg, "afile");
}

/* Writes a small file at root/rel (its folder must exist). */
static void write_text(const char *rel, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  FILE *f = fopen(p, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* A checkpoint root shared with the user's own folders (issue 14, defect 1): pruning
 * removes only checkpoints dtrain wrote, counts only those, and inside one of ours
 * removes only the files its manifest lists. Runs in root/shared. */
static void test_prune_leaves_foreign_folders(void) {
  dt_error_t err = {0};
  size_t root_len = strlen(root);
  snprintf(root + root_len, sizeof root - root_len, "/shared");
  CHECK_INT_EQ(mkdir(root, 0755), 0);
  /* The user's folders: plain names, a volume root's lost+found, a folder named like a
   * checkpoint but without our manifest, and one with a manifest of another tool. */
  static const char *const foreign_dirs[] = {"archive", "backup_2024", "lost+found", "ckpt-00",
                                             "ckpt-000"};
  for (size_t i = 0; i < sizeof foreign_dirs / sizeof foreign_dirs[0]; i++) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, foreign_dirs[i]);
    CHECK_INT_EQ(mkdir(p, 0755), 0);
  }
  write_text("archive/important.txt", "keep me");
  write_text("backup_2024/model.bin", "keep me too");
  write_text("ckpt-00/notes.txt", "mine");
  write_text("ckpt-000/manifest.json", "{\"format\": \"something-else\"}");

  for (int i = 1; i <= 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "ckpt-%02d", i);
    CHECK_INT_EQ(commit(name, (float)i, 2, &err), 0);
    /* A file the user dropped into one of our checkpoints is not ours to delete. */
    if (i == 1) write_text("ckpt-01/my-notes.txt", "mine");
  }
  CHECK(path_exists("archive/important.txt"));
  CHECK(path_exists("backup_2024/model.bin"));
  CHECK(path_exists("lost+found"));
  CHECK(path_exists("ckpt-00/notes.txt"));
  CHECK(path_exists("ckpt-000/manifest.json"));
  /* Ours are counted on their own: the newest two stay, the older ones go. */
  CHECK(path_exists("ckpt-04/model.safetensors") && path_exists("ckpt-05/model.safetensors"));
  CHECK(!path_exists("ckpt-02") && !path_exists("ckpt-03"));
  CHECK(!path_exists("ckpt-01/model.safetensors") && !path_exists("ckpt-01/manifest.json"));
  CHECK(path_exists("ckpt-01/my-notes.txt"));
  root[root_len] = '\0';
}

/* A fresh volume's root holds lost+found and maybe the user's folders (issue 14, defect
 * 2): there is no checkpoint to resume (DT_ERR_NOT_FOUND, so --resume starts from
 * scratch), and foreign folders are not even tried as candidates. Runs in root/volume. */
static void test_resume_on_fresh_volume(void) {
  dt_error_t err = {0};
  char dir[DT_CKPT_PATH_MAX];
  size_t root_len = strlen(root);
  snprintf(root + root_len, sizeof root - root_len, "/volume");
  CHECK_INT_EQ(mkdir(root, 0755), 0);
  char p[512];
  snprintf(p, sizeof p, "%s/lost+found", root);
  CHECK_INT_EQ(mkdir(p, 0700), 0);
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = true;
  FILE *warnings = tmpfile();
  log.err = warnings;
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), DT_ERR_NOT_FOUND);
  CHECK_STR_CONTAINS(err.msg, "no checkpoint in");
  snprintf(p, sizeof p, "%s/archive", root);
  CHECK_INT_EQ(mkdir(p, 0755), 0);
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), DT_ERR_NOT_FOUND);
  /* Nothing was tried, so nothing was reported. */
  CHECK_INT_EQ(ftell(warnings), 0);
  fclose(warnings);
  /* A checkpoint written beside them is found. */
  CHECK_INT_EQ(commit("ckpt-01", 1.0f, 3, &err), 0);
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
  CHECK_STR_CONTAINS(dir, "/volume/ckpt-01");
  root[root_len] = '\0';
}

/* Rewrites root/rel's manifest text: replaces `from` by `to` (once), then recomputes its
 * self CRC so that only the edited value can be what is wrong. */
static void edit_manifest(const char *rel, const char *from, const char *to) {
  char text[8192], p[512];
  read_text(rel, text, sizeof text);
  char *at = strstr(text, from);
  CHECK(at != NULL);
  if (!at) return;
  char edited[8192];
  snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  char *crc = strstr(edited, "\"self_crc32c\": \"") + strlen("\"self_crc32c\": \"");
  memset(crc, '0', 8);
  char hex[9];
  snprintf(hex, sizeof hex, "%08" PRIx32, dt_crc32c(0, edited, strlen(edited)));
  memcpy(crc, hex, 8);
  snprintf(p, sizeof p, "%s/%s", root, rel);
  FILE *f = fopen(p, "w");
  if (!f) return;
  fputs(edited, f);
  fclose(f);
}

/* Checkpoint files with out-of-range numbers and files that are not files (issue 14,
 * defect 10): each is refused with a message, none hangs (an alarm ends the test if
 * one does) and none trips UBSan. Runs in root/hostile. */
static void test_hostile_checkpoint_files(void) {
  dt_error_t err = {0};
  size_t root_len = strlen(root);
  snprintf(root + root_len, sizeof root - root_len, "/hostile");
  CHECK_INT_EQ(mkdir(root, 0755), 0);
  char dir[600];
  static const char *const sizes[] = {"-8", "1e300", "12.5", "18446744073709551616"};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    CHECK_INT_EQ(commit("ckpt-01", 1.0f, 0, &err), 0);
    char to[64];
    snprintf(to, sizeof to, "\"size\": %s,", sizes[i]);
    edit_manifest("ckpt-01/manifest.json", "\"size\": 7,", to);
    snprintf(dir, sizeof dir, "%s/ckpt-01", root);
    CHECK_INT_EQ(dt_ckpt_verify(dir, &err), DT_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.msg, "not a byte count");
  }
  /* An empty list of files verifies nothing, so it does not verify. */
  CHECK_INT_EQ(commit("ckpt-02", 1.0f, 0, &err), 0);
  char text[8192];
  read_text("ckpt-02/manifest.json", text, sizeof text);
  char *list = strstr(text, "\"files\": [");
  char *end = list ? strstr(list, "]") : NULL;
  CHECK(list && end);
  if (list && end) {
    char from[4096];
    snprintf(from, sizeof from, "%.*s", (int)(end + 1 - list), list);
    edit_manifest("ckpt-02/manifest.json", from, "\"files\": []");
  }
  snprintf(dir, sizeof dir, "%s/ckpt-02", root);
  CHECK_INT_EQ(dt_ckpt_verify(dir, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "no \"files\" listed");

  /* A FIFO, and a link to /dev/zero, in place of the model file: verified and read at
   * once as "not a regular file" instead of waiting for a writer or reading forever. */
  alarm(60);
  CHECK_INT_EQ(commit("ckpt-03", 1.0f, 0, &err), 0);
  char p[700];
  snprintf(p, sizeof p, "%s/ckpt-03/model.safetensors", root);
  unlink(p);
  CHECK_INT_EQ(mkfifo(p, 0644), 0);
  snprintf(dir, sizeof dir, "%s/ckpt-03", root);
  CHECK_INT_EQ(dt_ckpt_verify(dir, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "model.safetensors: not a regular file");
  void *data = NULL;
  size_t len = 0;
  CHECK_INT_EQ(dt_ckpt_read_file(dir, "model.safetensors", &data, &len, &err), DT_ERR_FORMAT);
  unlink(p);
  CHECK_INT_EQ(symlink("/dev/zero", p), 0);
  CHECK_INT_EQ(dt_ckpt_verify(dir, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "not a regular file");
  CHECK_INT_EQ(dt_ckpt_read_file(dir, "model.safetensors", &data, &len, &err), DT_ERR_FORMAT);
  alarm(0);
  root[root_len] = '\0';
}

/* Reads root/NAME/FILE in one pass with tensors t (n of them) into bases; returns the
 * outcome of dt_ckpt_in_close, sets *corrupt. */
static int read_one_pass(const char *name, const char *file, const dt_param_info_t *t, int n,
                         float *const *bases, bool *corrupt, dt_error_t *err) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/%s", root, name);
  dt_ckpt_in_t *in;
  int rc = dt_ckpt_in_open(dir, file, &in, corrupt, err);
  if (rc) return rc;
  void *head = NULL;
  size_t head_len = 0;
  rc = dt_safetensors_read_head(in, file, &head, &head_len, err);
  if (!rc) rc = dt_safetensors_read_data(in, head, head_len, t, n, bases, file, err);
  free(head);
  return dt_ckpt_in_close(in, rc, corrupt, err);
}

/* Commits checkpoint NAME holding FILE = data (len bytes). */
static int commit_bytes(const char *name, const char *file, const void *data, size_t len,
                        dt_error_t *err) {
  dt_ckpt_writer_t *w;
  int rc = dt_ckpt_begin(root, name, &w, err);
  if (rc) return rc;
  if ((rc = dt_ckpt_add_file(w, file, data, len, err))) {
    dt_ckpt_abort(w);
    return rc;
  }
  return dt_ckpt_commit(w, NULL, 0, err);
}

static bool file_equals(const char *rel, const void *data, size_t len) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  FILE *f = fopen(p, "rb");
  if (!f) return false;
  char *buf = malloc(len + 1);
  size_t got = buf ? fread(buf, 1, len + 1, f) : 0;
  fclose(f);
  bool same = buf && got == len && memcmp(buf, data, len) == 0;
  free(buf);
  return same;
}

/* Writing straight from the buffers and reading straight into them (issue 16): the file
 * is byte for byte what dt_safetensors_encode_parts makes; a one-pass read gives the
 * values back; a CRC failure in the last chunk is found at the end, after the data were
 * read into place; a header that does not fit the model writes nothing; a damaged
 * header is reported as the corruption it is; gaps and overlaps between tensors read
 * right. Runs in root/onepass. */
static void test_one_pass(void) {
  dt_error_t err = {0};
  size_t root_len = strlen(root);
  snprintf(root + root_len, sizeof root - root_len, "/onepass");
  CHECK_INT_EQ(mkdir(root, 0755), 0);

  /* A 2.4 MB kernel (three read chunks) in one buffer, a bias in another. */
  enum { BIG = 600000, SMALL = 7 };
  dt_param_info_t t[2];
  memset(t, 0, sizeof t);
  snprintf(t[0].name, sizeof t[0].name, "d.kernel");
  t[0].shape = (dt_shape_t){2, {1000, 600, 1, 1}};
  t[0].count = BIG;
  snprintf(t[1].name, sizeof t[1].name, "d.bias");
  t[1].shape = dt_shape_1d(SMALL);
  t[1].offset = 3; /* into the second buffer */
  t[1].count = SMALL;
  float *big = malloc(sizeof *big * BIG), small[SMALL + 3];
  for (int i = 0; i < BIG; i++) big[i] = (float)i * 0.001f - 7.0f;
  for (int i = 0; i < SMALL + 3; i++) small[i] = (float)i + 0.25f;
  const float *bases[2] = {big, small};
  const char *meta[] = {"step", "9", NULL};

  dt_ckpt_writer_t *w;
  uint64_t size = 0;
  CHECK_INT_EQ(dt_ckpt_begin(root, "ckpt-01", &w, &err), 0);
  CHECK_INT_EQ(dt_ckpt_add_safetensors(w, "m.safetensors", t, 2, bases, meta, &size, &err), 0);
  CHECK_INT_EQ(dt_ckpt_commit(w, NULL, 0, &err), 0);
  void *encoded;
  size_t len;
  CHECK_INT_EQ(dt_safetensors_encode_parts(t, 2, bases, meta, &encoded, &len, &err), 0);
  CHECK_INT_EQ(size, len);
  CHECK(file_equals("ckpt-01/m.safetensors", encoded, len));
  char dir[600];
  snprintf(dir, sizeof dir, "%s/ckpt-01", root);
  CHECK_INT_EQ(dt_ckpt_verify(dir, &err), 0);

  /* Read back into fresh buffers. */
  float *big2 = calloc(BIG, sizeof *big2), small2[SMALL + 3] = {0};
  float *into[2] = {big2, small2};
  bool corrupt = true;
  CHECK_INT_EQ(read_one_pass("ckpt-01", "m.safetensors", t, 2, into, &corrupt, &err), 0);
  CHECK(!corrupt);
  CHECK(memcmp(big2, big, sizeof *big * BIG) == 0);
  CHECK(memcmp(small2 + 3, small + 3, sizeof *small * SMALL) == 0);
  CHECK(small2[0] == 0.0f && small2[2] == 0.0f);

  /* The head's metadata. */
  dt_ckpt_in_t *in;
  CHECK_INT_EQ(dt_ckpt_in_open(dir, "m.safetensors", &in, &corrupt, &err), 0);
  void *head = NULL;
  size_t head_len = 0;
  CHECK_INT_EQ(dt_safetensors_read_head(in, "m", &head, &head_len, &err), 0);
  char v[32] = "";
  CHECK_INT_EQ(dt_safetensors_metadata(head, head_len, "step", v, sizeof v, &err), 0);
  CHECK(strcmp(v, "9") == 0);
  CHECK_INT_EQ(dt_ckpt_in_offset(in), head_len);
  free(head);
  CHECK_INT_EQ(dt_ckpt_in_close(in, 0, &corrupt, &err), 0);

  /* The last byte flipped: the values arrive in place, and the CRC at the end says
   * the file is corrupt (a caller then loads another checkpoint over them). */
  flip_byte("ckpt-01/m.safetensors", (long)len - 1);
  memset(big2, 0, sizeof *big2 * BIG);
  CHECK_INT_EQ(read_one_pass("ckpt-01", "m.safetensors", t, 2, into, &corrupt, &err),
               DT_ERR_FORMAT);
  CHECK(corrupt);
  CHECK_STR_CONTAINS(err.msg, "ckpt-01/m.safetensors: CRC32C");
  CHECK_STR_CONTAINS(err.msg, "(corrupt)");
  CHECK(memcmp(big2, big, sizeof *big * BIG) == 0);
  flip_byte("ckpt-01/m.safetensors", (long)len - 1);

  /* Another model's shape: refused before a byte of any buffer is written. */
  dt_param_info_t other[2] = {t[0], t[1]};
  other[1].shape = dt_shape_1d(SMALL + 1);
  other[1].count = SMALL + 1;
  for (int i = 0; i < BIG; i++) big2[i] = -1.0f;
  CHECK_INT_EQ(read_one_pass("ckpt-01", "m.safetensors", other, 2, into, &corrupt, &err),
               DT_ERR_SHAPE);
  CHECK(!corrupt);
  CHECK_STR_CONTAINS(err.msg, "m.safetensors: tensor 'd.bias' has another shape");
  CHECK(big2[0] == -1.0f && big2[BIG - 1] == -1.0f);

  /* A byte of the header damaged so that it no longer parses: the CRC explains it. */
  char *quote = memmem(encoded, len, "\"d.kernel\"", 10);
  CHECK(quote != NULL);
  long at = quote ? (long)(quote - (char *)encoded) : 8;
  flip_byte("ckpt-01/m.safetensors", at);
  CHECK_INT_EQ(read_one_pass("ckpt-01", "m.safetensors", t, 2, into, &corrupt, &err),
               DT_ERR_FORMAT);
  CHECK(corrupt);
  CHECK_STR_CONTAINS(err.msg, "(corrupt)");
  CHECK(big2[0] == -1.0f);
  flip_byte("ckpt-01/m.safetensors", at);

  /* Truncated: refused at open, as dt_ckpt_verify refuses it. */
  char p[700];
  snprintf(p, sizeof p, "%s/m.safetensors", dir);
  CHECK_INT_EQ(truncate(p, (off_t)len - 100), 0);
  CHECK_INT_EQ(read_one_pass("ckpt-01", "m.safetensors", t, 2, into, &corrupt, &err),
               DT_ERR_FORMAT);
  CHECK(corrupt);
  CHECK_STR_CONTAINS(err.msg, "truncated or partly written");
  /* A file the manifest does not list. */
  CHECK_INT_EQ(dt_ckpt_in_open(dir, "other.safetensors", &in, &corrupt, &err), DT_ERR_FORMAT);
  CHECK(!corrupt);
  CHECK_STR_CONTAINS(err.msg, "does not list other.safetensors");

  /* Hand-made layouts: a gap before the kernel and bytes after the bias; then the bias
   * overlapping the kernel's last 12 bytes. */
  static const char *const kernel_at[2] = {"[8,32]", "[0,24]"};
  static const char *const bias_at[2] = {"[40,52]", "[12,24]"};
  for (int k = 0; k < 2; k++) {
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"l.kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":%s},"
                      "\"l.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":%s}}",
                      kernel_at[k], bias_at[k]);
    uint64_t h = (uint64_t)hl;
    unsigned char st[8 + 256 + 64];
    float data[16];
    for (int i = 0; i < 16; i++) data[i] = 100.0f + (float)i;
    memcpy(st, &h, 8);
    memcpy(st + 8, hdr, (size_t)hl);
    memcpy(st + 8 + hl, data, sizeof data);
    char name[16];
    snprintf(name, sizeof name, "ckpt-%02d", 2 + k);
    CHECK_INT_EQ(commit_bytes(name, "m.safetensors", st, 8 + (size_t)hl + sizeof data, &err), 0);
    float back[9] = {0};
    float *bb[2] = {back, back};
    CHECK_INT_EQ(read_one_pass(name, "m.safetensors", tensors, 2, bb, &corrupt, &err), 0);
    int kernel0 = k == 0 ? 2 : 0, bias0 = k == 0 ? 10 : 3;
    bool right = true;
    for (int i = 0; i < 6; i++) right = right && back[i] == data[kernel0 + i];
    for (int i = 0; i < 3; i++) right = right && back[6 + i] == data[bias0 + i];
    if (!right) fprintf(stderr, "layout %d read wrong values\n", k);
    CHECK(right);
  }

  /* Picking with deferred files: a corrupt model file is left for the loader to find
   * (its size is right), a truncated one is not; a checkpoint the loader rejected is
   * reported and the one before it picked. */
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = true;
  FILE *warnings = tmpfile();
  log.err = warnings;
  char picked[DT_CKPT_PATH_MAX];
  flip_byte("ckpt-03/m.safetensors", 60);
  const char *deferred[] = {"m.safetensors", NULL};
  dt_ckpt_find_opts_t fo = {deferred, NULL, NULL};
  CHECK_INT_EQ(dt_ckpt_find(root, &fo, &log, picked, &err), 0);
  CHECK_STR_CONTAINS(picked, "/ckpt-03");
  CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, picked, &err), 0);
  CHECK_STR_CONTAINS(picked, "/ckpt-02");
  const char *rejected[] = {"ckpt-03", NULL};
  fo = (dt_ckpt_find_opts_t){deferred, rejected, "m.safetensors: CRC32C 1, the manifest says 2"};
  rewind(warnings);
  CHECK_INT_EQ(ftruncate(fileno(warnings), 0), 0);
  CHECK_INT_EQ(dt_ckpt_find(root, &fo, &log, picked, &err), 0);
  CHECK_STR_CONTAINS(picked, "/ckpt-02");
  char text[4096] = "";
  rewind(warnings);
  size_t got = fread(text, 1, sizeof text - 1, warnings);
  text[got] = '\0';
  CHECK_STR_CONTAINS(text, "checkpoint ckpt-03 (latest) cannot be used: m.safetensors: CRC32C 1");
  CHECK_STR_CONTAINS(text, "resuming from the older checkpoint");
  /* Every one rejected (ckpt-01 is truncated): none usable, the last problem named. */
  const char *all[] = {"ckpt-02", "ckpt-03", NULL};
  fo = (dt_ckpt_find_opts_t){deferred, all, "bad"};
  CHECK_INT_EQ(dt_ckpt_find(root, &fo, &log, picked, &err), DT_ERR_FORMAT);
  CHECK_STR_CONTAINS(err.msg, "no usable checkpoint in");
  CHECK_STR_CONTAINS(err.msg, "truncated or partly written");
  fclose(warnings);

  free(encoded);
  free(big);
  free(big2);
  root[root_len] = '\0';
}

/* Pruning in a background thread (dt_ckpt_prune_in_background): the same directories
 * remain as with pruning in line, as seen by the next dt_ckpt_* call (which waits for
 * the thread) and after dt_ckpt_wait_background; the files written through the writer
 * (fsync'd together at commit) verify. Runs in root/bg. */
static void test_background_prune(void) {
  dt_error_t err = {0};
  char dir[DT_CKPT_PATH_MAX], sub[600];
  dt_log_t log = dt_log_make(0, 1);
  log.quiet = true;
  size_t root_len = strlen(root);
  snprintf(root + root_len, sizeof root - root_len, "/bg");
  CHECK_INT_EQ(mkdir(root, 0755), 0);
  dt_ckpt_prune_in_background(true);
  CHECK_INT_EQ(commit("ckpt-01", 1.0f, 2, &err), 0);
  CHECK_INT_EQ(dt_ckpt_set_best(root, "ckpt-01", &err), 0);
  for (int i = 2; i <= 6; i++) {
    char name[16];
    snprintf(name, sizeof name, "ckpt-%02d", i);
    CHECK_INT_EQ(commit(name, (float)i, 2, &err), 0);
    /* find waits for the pruning that commit started: the older ones are gone. */
    CHECK_INT_EQ(dt_ckpt_find_latest(root, &log, dir, &err), 0);
    CHECK_STR_CONTAINS(dir, name);
    if (i >= 4) {
      snprintf(name, sizeof name, "ckpt-%02d", i - 2);
      CHECK(!path_exists(name));
    }
  }
  dt_ckpt_wait_background();
  CHECK(path_exists("ckpt-01/model.safetensors")); /* `best` */
  CHECK(!path_exists("ckpt-02") && !path_exists("ckpt-03") && !path_exists("ckpt-04"));
  CHECK(path_exists("ckpt-05/model.safetensors") && path_exists("ckpt-06/model.safetensors"));
  for (int i = 5; i <= 6; i++) {
    snprintf(sub, sizeof sub, "%s/ckpt-%02d", root, i);
    CHECK_INT_EQ(dt_ckpt_verify(sub, &err), 0);
  }
  /* Off again: commit prunes before it returns. */
  dt_ckpt_prune_in_background(false);
  CHECK_INT_EQ(commit("ckpt-07", 7.0f, 2, &err), 0);
  CHECK(!path_exists("ckpt-05") && path_exists("ckpt-06") && path_exists("ckpt-07"));
  root[root_len] = '\0';
}

int main(void) {
  snprintf(root, sizeof root, "%s/dtrain-ckpt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  make_tensors();
  test_json();
  test_safetensors();
  test_directories();
  test_write_failure();
  test_prune_leaves_foreign_folders();
  test_resume_on_fresh_volume();
  test_hostile_checkpoint_files();
  test_one_pass();
  test_background_prune();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
  return test_summary("test_checkpoint");
}
