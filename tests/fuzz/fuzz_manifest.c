/* libFuzzer target for checkpoint manifests and their verification: --resume and
 * --inspect read checkpoint directories that a crash, a full disk or a person may
 * have damaged.
 *
 * Input: byte 0 chooses fix-ups, the rest is ROOT/ckpt-0000000008/manifest.json.
 *   bit 0: the harness writes the right CRC into the manifest's "self_crc32c" field
 *          (when it has one), so that inputs get past that check to the JSON and
 *          the file list;
 *   bit 1: ROOT/latest names ckpt-0000000008 (else there is no `latest`).
 * Beside the manifest lies model.safetensors (fixed content) that it may list, and
 * ROOT/ckpt-0000000004 is an older checkpoint that verifies. dt_ckpt_verify and
 * dt_ckpt_read_info run on the checkpoint, dt_ckpt_find_latest on ROOT (it must pick
 * ckpt-0000000008 exactly when that verifies, else fall back to ckpt-0000000004) and
 * on the checkpoint directory itself (it must agree with dt_ckpt_verify). A manifest
 * that verifies has a correct self CRC and is JSON. The directories live in a fresh
 * temporary directory per process (under $TMPDIR), removed at exit. Nothing may crash,
 * read out of bounds, or leak. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/checkpoint.h"
#include "dtrain/crc32c.h"
#include "dtrain/json.h"
#include "dtrain/log.h"

static const char SELF_CRC_KEY[] = "\"self_crc32c\": \"";
/* The file the checkpoints hold besides their manifest. */
static const char MODEL[] = "model.safetensors";
static const char MODEL_DATA[] = "fixed contents of the fuzz harness's model file\n";

static char root[256], ckpt[300], older[300];
static dt_log_t quiet;

/* Replaces DIR/NAME by a new file: removed and created again rather than truncated,
 * because ext4 flushes a file that was truncated and rewritten when it is closed,
 * which would make every input cost a disk write. */
static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) != 0) {
    perror(path);
    abort();
  }
}

static void remove_file(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

static void cleanup(void) {
  remove_file(ckpt, "manifest.json");
  remove_file(ckpt, MODEL);
  remove_file(older, "manifest.json");
  remove_file(older, MODEL);
  rmdir(ckpt);
  rmdir(older);
  remove_file(root, "latest");
  rmdir(root);
}

/* The older checkpoint is written by the real writer, so it is what dtrain makes. */
static void setup(void) {
  if (root[0]) return;
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/fuzz_manifest.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    abort();
  }
  atexit(cleanup);
  snprintf(ckpt, sizeof ckpt, "%s/ckpt-0000000008", root);
  snprintf(older, sizeof older, "%s/ckpt-0000000004", root);
  dt_ckpt_writer_t *w;
  dt_error_t err;
  if (dt_ckpt_begin(root, "ckpt-0000000004", &w, &err) ||
      dt_ckpt_add_file(w, MODEL, MODEL_DATA, strlen(MODEL_DATA), &err) ||
      dt_ckpt_commit(w, "{\"step\": 4}", 0, &err)) {
    fprintf(stderr, "fuzz_manifest: %s\n", err.msg);
    abort();
  }
  remove_file(root, "latest");
  if (mkdir(ckpt, 0755) != 0) abort();
  write_file(ckpt, MODEL, MODEL_DATA, strlen(MODEL_DATA));
  quiet = dt_log_make(0, 1);
  quiet.quiet = true;
  quiet.out = quiet.err = fopen("/dev/null", "w");
  if (!quiet.out) abort();
}

/* The offset of the self-CRC digits in text, or -1 when the field is missing. The
 * reader stops at a NUL byte (the manifest is read as a C string). */
static long self_crc_at(const char *text, size_t len) {
  const char *field = strstr(text, SELF_CRC_KEY);
  if (!field || (size_t)(field - text) + strlen(SELF_CRC_KEY) + 8 > len) return -1;
  return (long)(field - text + (long)strlen(SELF_CRC_KEY));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  setup();
  int mode = data[0];
  size_t len = size - 1;
  char *text = malloc(len + 1);
  if (!text) abort();
  memcpy(text, data + 1, len);
  text[len] = '\0';
  long at = self_crc_at(text, len);
  if ((mode & 1) && at >= 0) {
    memset(text + at, '0', 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, dt_crc32c(0, text, len));
    memcpy(text + at, hex, 8);
  }
  write_file(ckpt, "manifest.json", text, len);
  if (mode & 2)
    write_file(root, "latest", "ckpt-0000000008\n", 16);
  else
    remove_file(root, "latest");

  dt_error_t err;
  int verified = dt_ckpt_verify(ckpt, &err);
  if (verified != 0 && (verified != err.code || !err.msg[0])) abort();
  if (verified == 0) {
    /* It had a self CRC that holds, and it is JSON. */
    if (at < 0) abort();
    char stored[9], hex[9];
    memcpy(stored, text + at, 8);
    stored[8] = '\0';
    memset(text + at, '0', 8);
    snprintf(hex, sizeof hex, "%08" PRIx32, dt_crc32c(0, text, len));
    memcpy(text + at, stored, 8);
    if (strcmp(stored, hex) != 0) abort();
    dt_json_t *j;
    if (dt_json_parse(text, len, "manifest", &j, &err) != 0) abort();
    dt_json_free(j);
  }

  char info[4096], small[6];
  int rc = dt_ckpt_read_info(ckpt, info, sizeof info, &err);
  if (rc == 0 && strlen(info) >= sizeof info) abort();
  int rc2 = dt_ckpt_read_info(ckpt, small, sizeof small, &err);
  if (rc2 != rc || (rc == 0 && strncmp(small, info, sizeof small - 1) != 0)) abort();

  /* ROOT: this checkpoint if it verifies (it is the newest), else the older one. */
  char dir[DT_CKPT_PATH_MAX];
  if (dt_ckpt_find_latest(root, &quiet, dir, &err) != 0) abort();
  if (strcmp(dir, verified == 0 ? ckpt : older) != 0) abort();
  /* The checkpoint itself: found exactly when it verifies. */
  rc = dt_ckpt_find_latest(ckpt, &quiet, dir, &err);
  if ((rc == 0) != (verified == 0) || (rc == 0 && strcmp(dir, ckpt) != 0)) abort();

  free(text);
  return 0;
}
