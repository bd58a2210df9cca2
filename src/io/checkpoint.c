/* Atomic checkpoint directories: writing, publishing, pruning, verifying and finding
 * the newest good one (see checkpoint.h). Safetensors is in safetensors.c. */
#define _GNU_SOURCE /* sync_file_range */
#include "dtrain/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtrain/crc32c.h"
#include "dtrain/json.h"

/* Reads and writes go in chunks of READ_CHUNK / WRITE_CHUNK bytes: large enough that
 * system calls cost nothing, small enough that a chunk just copied is still in the
 * cache when its CRC is computed (or just CRC'd when it is copied). */
enum { FILE_NAME_MAX = 128, MANIFEST_MAX = 1 << 20, READ_CHUNK = 1 << 20, WRITE_CHUNK = 1 << 20 };

static const char MANIFEST[] = "manifest.json";
/* The manifest's own checksum: computed with this field holding 8 zeros. */
static const char SELF_CRC_KEY[] = "\"self_crc32c\": \"";

struct dt_ckpt_writer {
  char root[DT_CKPT_PATH_MAX], name[FILE_NAME_MAX];
  char tmp[DT_CKPT_PATH_MAX], final[DT_CKPT_PATH_MAX];
  bool standalone; /* dt_ckpt_begin_dir: no `latest`, no pruning */
  int nfiles;
  struct {
    char name[FILE_NAME_MAX];
    uint64_t size;
    uint32_t crc;
    int fd; /* written by this writer and not yet fsync'd (commit does it), else -1 */
  } files[DT_CKPT_MAX_FILES];
};

/* ---- pruning in the background (dt_ckpt_prune_in_background) ----
 * Removing an old checkpoint frees its blocks and page-cache pages: about 6 ms per
 * 26 MB file here, paid by the training thread when commit prunes in line. With
 * background pruning on, commit hands the pruning to a thread; every entry point that
 * looks at or changes a checkpoint root first waits for it, so within the process the
 * API sees the same directories as with pruning in line. */
static pthread_mutex_t bg_mu = PTHREAD_MUTEX_INITIALIZER;
static bool bg_on, bg_running, bg_atexit;
static pthread_t bg_thread;

typedef struct {
  char root[DT_CKPT_PATH_MAX];
  int keep_last;
} prune_job_t;

static void prune(const char *root, int keep_last);

static void *prune_main(void *arg) {
  prune_job_t *j = arg;
  prune(j->root, j->keep_last);
  free(j);
  return NULL;
}

void dt_ckpt_wait_background(void) {
  pthread_mutex_lock(&bg_mu);
  if (bg_running) {
    pthread_join(bg_thread, NULL);
    bg_running = false;
  }
  pthread_mutex_unlock(&bg_mu);
}

void dt_ckpt_prune_in_background(bool on) {
  pthread_mutex_lock(&bg_mu);
  bg_on = on;
  /* A process that exits (also through exit()) finishes the pruning first: an old
   * checkpoint is never left half removed when that can be avoided. */
  bool reg = on && !bg_atexit;
  if (reg) bg_atexit = true;
  pthread_mutex_unlock(&bg_mu);
  if (reg) atexit(dt_ckpt_wait_background);
  if (!on) dt_ckpt_wait_background();
}

/* Prunes ROOT now, or in the background if that is on (falling back to now if no
 * thread can be started). */
static void prune_after_commit(const char *root, int keep_last) {
  if (keep_last <= 0) return;
  dt_ckpt_wait_background();
  pthread_mutex_lock(&bg_mu);
  bool started = false;
  if (bg_on) {
    prune_job_t *j = malloc(sizeof *j);
    if (j) {
      snprintf(j->root, sizeof j->root, "%s", root);
      j->keep_last = keep_last;
      if (pthread_create(&bg_thread, NULL, prune_main, j) == 0) started = bg_running = true;
      else free(j);
    }
  }
  pthread_mutex_unlock(&bg_mu);
  if (!started) prune(root, keep_last);
}

static int path_join(char *out, const char *dir, const char *file, dt_error_t *err) {
  int n = snprintf(out, DT_CKPT_PATH_MAX, "%s/%s", dir, file);
  if (n < 0 || n >= DT_CKPT_PATH_MAX)
    return dt_error_set(err, DT_ERR_ARG, "path too long: %s/%s", dir, file);
  return 0;
}

static int mkdir_p(const char *path, dt_error_t *err) {
  char buf[DT_CKPT_PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return dt_error_set(err, DT_ERR_ARG, "path too long: %s", path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dt_error_set(err, DT_ERR_IO, "cannot create directory %s: %s", buf,
                            strerror(errno));
      *p = c;
      if (!c) break;
    }
  }
  return 0;
}

static int fsync_dir(const char *dir, dt_error_t *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return dt_error_set(err, DT_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  /* Some file systems cannot fsync a directory (EINVAL); they order metadata anyway. */
  if (rc != 0 && e != EINVAL)
    return dt_error_set(err, DT_ERR_IO, "cannot sync directory %s: %s", dir, strerror(e));
  return 0;
}

/* Removes a checkpoint directory: its files, then itself. Checkpoints are flat. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[DT_CKPT_PATH_MAX];
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
          snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
        unlink(p);
    closedir(d);
  }
  rmdir(dir);
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Writes DIR/FILE from the pieces; with keep_fd, the file is left open and not yet
 * fsync'd (*keep_fd gets its descriptor), else it is fsync'd and closed. */
static int write_pieces(const char *dir, const char *file, const dt_ckpt_piece_t *pieces, int n,
                        int *keep_fd, uint64_t *size, uint32_t *crc, dt_error_t *err) {
  char path[DT_CKPT_PATH_MAX];
  int rc = path_join(path, dir, file, err);
  if (rc) return rc;
  size_t total = 0, done = 0;
  for (int i = 0; i < n; i++) total += pieces[i].len;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return dt_error_set(err, DT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  uint32_t c = 0;
  /* Chunk by chunk: the CRC pass brings a chunk into the cache, from where write()
   * copies it, so the data cross the memory bus once. */
  for (int i = 0; i < n; i++) {
    const char *p = pieces[i].data;
    size_t left = pieces[i].len;
    while (left > 0) {
      size_t chunk = left < WRITE_CHUNK ? left : WRITE_CHUNK;
#ifdef SYNC_FILE_RANGE_WRITE
      /* The device starts on what is written while the next chunk is copied, so the
       * fsync below waits only for the tail instead of the whole file. (Only a hint:
       * the fsync is what makes the file durable; errors here are left to it.) */
      if (done >= WRITE_CHUNK)
        sync_file_range(fd, (off_t)(done - WRITE_CHUNK), WRITE_CHUNK, SYNC_FILE_RANGE_WRITE);
#endif
      c = dt_crc32c(c, p, chunk);
      while (chunk > 0) {
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          int e = w < 0 ? errno : ENOSPC;
          close(fd);
          return dt_error_set(err, DT_ERR_IO, "cannot write %s (%zu of %zu bytes written): %s",
                              path, done, total, strerror(e));
        }
        p += w;
        chunk -= (size_t)w;
        left -= (size_t)w;
        done += (size_t)w;
      }
    }
  }
  if (keep_fd) {
    *keep_fd = fd;
  } else {
    if (fsync(fd) != 0) {
      int e = errno;
      close(fd);
      return dt_error_set(err, DT_ERR_IO, "cannot sync %s: %s", path, strerror(e));
    }
    if (close(fd) != 0) return dt_error_set(err, DT_ERR_IO, "cannot close %s: %s", path, strerror(errno));
  }
  if (size) *size = total;
  if (crc) *crc = c;
  return 0;
}

int dt_ckpt_write_pieces(const char *dir, const char *file, const dt_ckpt_piece_t *pieces, int n,
                         uint64_t *size, uint32_t *crc, dt_error_t *err) {
  return write_pieces(dir, file, pieces, n, NULL, size, crc, err);
}

/* Syncs and closes the files this writer left open (in the order written: the device
 * has had the longest for the first ones), then forgets them. On failure the rest are
 * closed too and the error names the file. */
static int sync_files(dt_ckpt_writer_t *w, dt_error_t *err) {
  int rc = 0;
  for (int i = 0; i < w->nfiles; i++) {
    int fd = w->files[i].fd;
    if (fd < 0) continue;
    w->files[i].fd = -1;
    if (rc) {
      close(fd);
      continue;
    }
    if (fsync(fd) != 0)
      rc = dt_error_set(err, DT_ERR_IO, "cannot sync %s/%s: %s", w->tmp, w->files[i].name,
                        strerror(errno));
    if (close(fd) != 0 && !rc)
      rc = dt_error_set(err, DT_ERR_IO, "cannot close %s/%s: %s", w->tmp, w->files[i].name,
                        strerror(errno));
  }
  return rc;
}

int dt_ckpt_write_file(const char *dir, const char *file, const void *data, size_t len,
                       uint32_t *crc, dt_error_t *err) {
  dt_ckpt_piece_t piece = {data, len};
  return dt_ckpt_write_pieces(dir, file, &piece, 1, NULL, crc, err);
}

/* True for the names dtrain gives its checkpoints: a lowercase word, '-', then decimal
 * digits ("ckpt-0000001200", "ps-000000000000042"). A checkpoint root may be shared
 * with the user's own folders (or be a volume root with lost+found): only names of
 * this shape are ever listed, resumed from or pruned. */
static bool is_checkpoint_name(const char *name) {
  const char *p = name;
  while (*p >= 'a' && *p <= 'z') p++;
  if (p == name || *p != '-' || !p[1]) return false;
  for (p++; *p; p++)
    if (*p < '0' || *p > '9') return false;
  return true;
}

int dt_ckpt_begin(const char *root, const char *name, dt_ckpt_writer_t **out, dt_error_t *err) {
  if (!is_checkpoint_name(name) || strlen(name) >= FILE_NAME_MAX)
    return dt_error_set(err, DT_ERR_ARG, "bad checkpoint name '%s' (wanted a lowercase word, "
                        "'-' and digits)", name);
  dt_ckpt_wait_background();
  dt_ckpt_writer_t *w = calloc(1, sizeof *w);
  if (!w) return dt_error_set(err, DT_ERR_NOMEM, "out of memory starting a checkpoint");
  int rc;
  char tmpname[FILE_NAME_MAX + 8];
  snprintf(tmpname, sizeof tmpname, ".tmp-%s", name);
  if (snprintf(w->root, sizeof w->root, "%s", root) >= (int)sizeof w->root ||
      (rc = path_join(w->tmp, root, tmpname, err)) || (rc = path_join(w->final, root, name, err))) {
    free(w);
    return dt_error_set(err, DT_ERR_ARG, "checkpoint path too long: %s", root);
  }
  snprintf(w->name, sizeof w->name, "%s", name);
  if ((rc = mkdir_p(root, err))) {
    free(w);
    return dt_error_prefix(err, "checkpoint directory: ");
  }
  /* A temporary directory of the same name is what a crash mid-write left behind. */
  if (exists(w->tmp)) remove_dir(w->tmp);
  if (mkdir(w->tmp, 0755) != 0) {
    rc = dt_error_set(err, DT_ERR_IO, "cannot create %s: %s", w->tmp, strerror(errno));
    free(w);
    return rc;
  }
  *out = w;
  return 0;
}

static dt_json_t *own_manifest(const char *dir);

int dt_ckpt_begin_dir(const char *dir, dt_ckpt_writer_t **out, dt_error_t *err) {
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/') len--;
  const char *slash = memrchr(dir, '/', len);
  const char *base = slash ? slash + 1 : dir;
  size_t blen = len - (size_t)(base - dir);
  if (blen == 0 || blen >= FILE_NAME_MAX || (blen == 1 && base[0] == '.') ||
      (blen == 2 && base[0] == '.' && base[1] == '.'))
    return dt_error_set(err, DT_ERR_ARG, "cannot write a directory named '%s'", dir);
  dt_ckpt_wait_background();
  dt_ckpt_writer_t *w = calloc(1, sizeof *w);
  if (!w) return dt_error_set(err, DT_ERR_NOMEM, "out of memory starting to write %s", dir);
  w->standalone = true;
  snprintf(w->name, sizeof w->name, "%.*s", (int)blen, base);
  int n = slash ? snprintf(w->root, sizeof w->root, "%.*s", (int)(slash == dir ? 1 : slash - dir),
                           dir)
                : snprintf(w->root, sizeof w->root, ".");
  char tmpname[FILE_NAME_MAX + 8];
  snprintf(tmpname, sizeof tmpname, ".tmp-%s", w->name);
  int rc;
  if (n < 0 || n >= (int)sizeof w->root || (rc = path_join(w->tmp, w->root, tmpname, err)) ||
      (rc = path_join(w->final, w->root, w->name, err))) {
    free(w);
    return dt_error_set(err, DT_ERR_ARG, "path too long: %s", dir);
  }
  /* Commit replaces DIR: only one of ours (a manifest we wrote), never the user's. */
  if (exists(w->final)) {
    dt_json_t *m = own_manifest(w->final);
    dt_json_free(m);
    if (!m) {
      rc = dt_error_set(err, DT_ERR_IO, "%s exists and was not written by dtrain (no dtrain "
                        "manifest.json): not replaced", w->final);
      free(w);
      return rc;
    }
  }
  if ((rc = mkdir_p(w->root, err))) {
    free(w);
    return rc;
  }
  if (exists(w->tmp)) remove_dir(w->tmp);
  if (mkdir(w->tmp, 0755) != 0) {
    rc = dt_error_set(err, DT_ERR_IO, "cannot create %s: %s", w->tmp, strerror(errno));
    free(w);
    return rc;
  }
  *out = w;
  return 0;
}

const char *dt_ckpt_tmp_dir(const dt_ckpt_writer_t *w) { return w->tmp; }

int dt_ckpt_add_record(dt_ckpt_writer_t *w, const char *file, uint64_t size, uint32_t crc,
                       dt_error_t *err) {
  if (w->nfiles >= DT_CKPT_MAX_FILES || strlen(file) >= FILE_NAME_MAX || strchr(file, '"') ||
      strchr(file, '/') || strcmp(file, MANIFEST) == 0)
    return dt_error_set(err, DT_ERR_ARG, "checkpoint %s: cannot add file '%s'", w->name, file);
  snprintf(w->files[w->nfiles].name, FILE_NAME_MAX, "%s", file);
  w->files[w->nfiles].size = size;
  w->files[w->nfiles].crc = crc;
  w->files[w->nfiles].fd = -1;
  w->nfiles++;
  return 0;
}

int dt_ckpt_add_pieces(dt_ckpt_writer_t *w, const char *file, const dt_ckpt_piece_t *pieces,
                       int n, uint64_t *size, dt_error_t *err) {
  uint64_t len = 0;
  uint32_t crc = 0;
  int fd = -1;
  /* Not fsync'd here: commit syncs all of them together before the manifest, so the
   * device writes one file while the next is copied, and one journal commit covers
   * them all. */
  int rc = write_pieces(w->tmp, file, pieces, n, &fd, &len, &crc, err);
  if (rc) return rc;
  if (size) *size = len;
  if ((rc = dt_ckpt_add_record(w, file, len, crc, err))) {
    close(fd);
    return rc;
  }
  w->files[w->nfiles - 1].fd = fd;
  return 0;
}

int dt_ckpt_add_file(dt_ckpt_writer_t *w, const char *file, const void *data, size_t len,
                     dt_error_t *err) {
  dt_ckpt_piece_t piece = {data, len};
  return dt_ckpt_add_pieces(w, file, &piece, 1, NULL, err);
}

void dt_ckpt_abort(dt_ckpt_writer_t *w) {
  if (!w) return;
  for (int i = 0; i < w->nfiles; i++)
    if (w->files[i].fd >= 0) close(w->files[i].fd);
  remove_dir(w->tmp);
  free(w);
}

/* Writes ROOT/POINTER (latest, best) = name, atomically. */
static int write_pointer(const char *root, const char *pointer, const char *name, dt_error_t *err) {
  char tmpname[64], path[DT_CKPT_PATH_MAX], tmp[DT_CKPT_PATH_MAX], text[FILE_NAME_MAX + 2];
  snprintf(tmpname, sizeof tmpname, "%s.tmp", pointer);
  int rc;
  if ((rc = path_join(path, root, pointer, err)) || (rc = path_join(tmp, root, tmpname, err)))
    return rc;
  int n = snprintf(text, sizeof text, "%s\n", name);
  if ((rc = dt_ckpt_write_file(root, tmpname, text, (size_t)n, NULL, err))) return rc;
  if (rename(tmp, path) != 0) {
    rc = dt_error_set(err, DT_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return rc;
  }
  return fsync_dir(root, err);
}

/* Reads ROOT/POINTER into name; false if absent or unreadable. */
static bool read_pointer(const char *root, const char *pointer, char *name, size_t cap) {
  char path[DT_CKPT_PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", root, pointer) >= (int)sizeof path) return false;
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool ok = fgets(name, (int)cap, f) != NULL;
  fclose(f);
  if (!ok) return false;
  name[strcspn(name, "\r\n")] = '\0';
  return name[0] && !strchr(name, '/') && name[0] != '.';
}

int dt_ckpt_set_best(const char *root, const char *name, dt_error_t *err) {
  dt_ckpt_wait_background();
  return write_pointer(root, "best", name, err);
}

/* Committed checkpoints under root (directories with checkpoint names), sorted by
 * name ascending; *out is malloc'd (free each entry and the array). */
static int list_checkpoints(const char *root, char ***out, int *count) {
  *out = NULL;
  *count = 0;
  DIR *d = opendir(root);
  if (!d) return -1;
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!is_checkpoint_name(e->d_name)) continue;
    char p[DT_CKPT_PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", root, e->d_name) >= (int)sizeof p) continue;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (*count == cap) {
      cap = cap ? 2 * cap : 16;
      char **grown = realloc(*out, sizeof *grown * (size_t)cap);
      if (!grown) break;
      *out = grown;
    }
    if (!((*out)[*count] = strdup(e->d_name))) break;
    (*count)++;
  }
  closedir(d);
  for (int i = 1; i < *count; i++)
    for (int j = i; j > 0 && strcmp((*out)[j - 1], (*out)[j]) > 0; j--) {
      char *t = (*out)[j];
      (*out)[j] = (*out)[j - 1];
      (*out)[j - 1] = t;
    }
  return 0;
}

static void free_list(char **list, int count) {
  for (int i = 0; i < count; i++) free(list[i]);
  free(list);
}

static int load_manifest(const char *dir, dt_json_t **out, dt_error_t *err);

/* DIR's manifest if DIR is a checkpoint dtrain wrote: the manifest's own CRC holds and
 * it names our format. NULL for anything else, which pruning must not touch. */
static dt_json_t *own_manifest(const char *dir) {
  dt_json_t *m;
  if (load_manifest(dir, &m, NULL) != 0) return NULL;
  const dt_json_t *format = dt_json_get_typed(m, "format", DT_JSON_STRING);
  if (format && strcmp(format->string, "dtrain-checkpoint") == 0 &&
      dt_json_get_typed(m, "files", DT_JSON_ARRAY))
    return m;
  dt_json_free(m);
  return NULL;
}

/* Removes one of our checkpoints: the files its manifest lists, the manifest, then the
 * directory. Anything else found inside was not ours, so it stays (and so does the
 * directory, since rmdir then fails). */
static void remove_checkpoint(const char *dir, const dt_json_t *manifest) {
  const dt_json_t *files = dt_json_get_typed(manifest, "files", DT_JSON_ARRAY);
  char p[DT_CKPT_PATH_MAX];
  for (const dt_json_t *f = files->child; f; f = f->next) {
    const dt_json_t *name = dt_json_get_typed(f, "name", DT_JSON_STRING);
    if (name && name->string[0] && name->string[0] != '.' && !strchr(name->string, '/') &&
        snprintf(p, sizeof p, "%s/%s", dir, name->string) < (int)sizeof p)
      unlink(p);
  }
  if (snprintf(p, sizeof p, "%s/%s", dir, MANIFEST) < (int)sizeof p) unlink(p);
  rmdir(dir);
}

/* Keeps the newest keep_last of our checkpoints (by name), the one `latest` names and
 * the one `best` names; removes the rest. Directories that are not ours (by name and
 * by manifest) are neither counted nor removed. */
static void prune(const char *root, int keep_last) {
  char **list;
  int count;
  if (keep_last <= 0 || list_checkpoints(root, &list, &count) != 0) return;
  dt_json_t **manifests = calloc((size_t)count + 1, sizeof *manifests);
  if (!manifests) {
    free_list(list, count);
    return;
  }
  int owned = 0;
  char p[DT_CKPT_PATH_MAX];
  for (int i = 0; i < count; i++)
    if (path_join(p, root, list[i], NULL) == 0 && (manifests[i] = own_manifest(p)))
      owned++;
  char best[FILE_NAME_MAX] = "", latest[FILE_NAME_MAX] = "";
  read_pointer(root, "best", best, sizeof best);
  read_pointer(root, "latest", latest, sizeof latest);
  /* list is sorted oldest first: the first (owned - keep_last) owned ones go. */
  int to_remove = owned - keep_last;
  for (int i = 0; i < count && to_remove > 0; i++) {
    if (!manifests[i]) continue;
    to_remove--;
    if (strcmp(list[i], best) == 0 || strcmp(list[i], latest) == 0) continue;
    if (path_join(p, root, list[i], NULL) == 0) remove_checkpoint(p, manifests[i]);
  }
  for (int i = 0; i < count; i++) dt_json_free(manifests[i]);
  free(manifests);
  free_list(list, count);
}

/* Builds the manifest text into a malloc'd buffer, its self CRC filled in. */
static char *manifest_text(const dt_ckpt_writer_t *w, const char *info, size_t *len) {
  size_t cap = 4096 + (size_t)w->nfiles * (FILE_NAME_MAX + 96) + (info ? strlen(info) : 0);
  char *t = malloc(cap);
  if (!t) return NULL;
  size_t n = (size_t)snprintf(t, cap,
                              "{\n  %s00000000\",\n  \"format\": \"dtrain-checkpoint\",\n"
                              "  \"version\": 1,\n  \"name\": \"%s\",\n  \"files\": [",
                              SELF_CRC_KEY, w->name);
  for (int i = 0; i < w->nfiles; i++)
    n += (size_t)snprintf(t + n, cap - n,
                          "%s\n    {\"name\": \"%s\", \"size\": %" PRIu64 ", \"crc32c\": \"%08" PRIx32
                          "\"}",
                          i ? "," : "", w->files[i].name, w->files[i].size, w->files[i].crc);
  n += (size_t)snprintf(t + n, cap - n, "\n  ],\n  \"info\": %s\n}\n", info && info[0] ? info : "{}");
  char hex[9];
  snprintf(hex, sizeof hex, "%08" PRIx32, dt_crc32c(0, t, n));
  memcpy(strstr(t, SELF_CRC_KEY) + strlen(SELF_CRC_KEY), hex, 8);
  *len = n;
  return t;
}

int dt_ckpt_commit(dt_ckpt_writer_t *w, const char *info, int keep_last, dt_error_t *err) {
  dt_ckpt_wait_background();
  size_t len;
  char *text = manifest_text(w, info, &len);
  if (!text) {
    dt_ckpt_abort(w);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a checkpoint manifest");
  }
  /* The data files reach the disk before the manifest that vouches for them. */
  int rc = sync_files(w, err);
  if (!rc) rc = dt_ckpt_write_file(w->tmp, MANIFEST, text, len, NULL, err);
  free(text);
  if (!rc) rc = fsync_dir(w->tmp, err);
  if (rc) {
    dt_ckpt_abort(w);
    return rc;
  }
  /* Re-saving a name (the same step after a resume): the old directory is moved aside
   * first because rename() cannot replace a non-empty directory. */
  char trash[DT_CKPT_PATH_MAX] = "";
  if (exists(w->final)) {
    char trashname[FILE_NAME_MAX + 8];
    snprintf(trashname, sizeof trashname, ".trash-%s", w->name);
    if (path_join(trash, w->root, trashname, NULL) == 0) {
      remove_dir(trash);
      if (rename(w->final, trash) != 0) trash[0] = '\0';
    } else {
      trash[0] = '\0';
    }
  }
  if (rename(w->tmp, w->final) != 0) {
    rc = dt_error_set(err, DT_ERR_IO, "cannot rename %s to %s: %s", w->tmp, w->final,
                      strerror(errno));
    dt_ckpt_abort(w);
    return rc;
  }
  if (trash[0]) remove_dir(trash);
  if (w->standalone) {
    rc = fsync_dir(w->root, err);
    free(w);
    return rc;
  }
  if ((rc = fsync_dir(w->root, err)) || (rc = write_pointer(w->root, "latest", w->name, err))) {
    free(w);
    return rc;
  }
  prune_after_commit(w->root, keep_last);
  free(w);
  return 0;
}

/* ---- reading ---- */

/* Opens PATH for reading only if it is a regular file: a FIFO or a link to /dev/zero
 * put into a checkpoint would otherwise block or never end. O_NONBLOCK keeps the open
 * itself from waiting for a FIFO's writer; it is cleared again for the reads. */
static int open_regular_fd(const char *path, int *out, dt_error_t *err) {
  *out = -1;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return dt_error_set(err, errno == ENOENT ? DT_ERR_NOT_FOUND : DT_ERR_IO,
                        "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: not a regular file", path);
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    return dt_error_set(err, DT_ERR_IO, "cannot open %s: %s", path, strerror(e));
  }
  *out = fd;
  return 0;
}

static int open_regular(const char *path, FILE **out, dt_error_t *err) {
  *out = NULL;
  int fd;
  int rc = open_regular_fd(path, &fd, err);
  if (rc) return rc;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    return dt_error_set(err, DT_ERR_IO, "cannot open %s: %s", path, strerror(e));
  }
  *out = f;
  return 0;
}

int dt_ckpt_read_file(const char *dir, const char *file, void **data, size_t *len,
                      dt_error_t *err) {
  *data = NULL;
  *len = 0;
  char path[DT_CKPT_PATH_MAX];
  int rc = path_join(path, dir, file, err);
  if (rc) return rc;
  FILE *f;
  if ((rc = open_regular(path, &f, err))) return rc;
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    fclose(f);
    return dt_error_set(err, DT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(f);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, n);
  }
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  if (got != n) {
    free(buf);
    return dt_error_set(err, DT_ERR_IO, "cannot read %s: got %zu of %zu bytes", path, got, n);
  }
  buf[n] = '\0'; /* text files can be used as C strings */
  *data = buf;
  *len = n;
  return 0;
}

/* Reads and checks DIR's manifest: its self CRC, then its JSON. */
static int load_manifest(const char *dir, dt_json_t **out, dt_error_t *err) {
  void *data;
  size_t len;
  int rc = dt_ckpt_read_file(dir, MANIFEST, &data, &len, err);
  if (rc) return rc;
  char *text = data, *field = len < MANIFEST_MAX ? strstr(text, SELF_CRC_KEY) : NULL;
  if (!field || (size_t)(field - text) + strlen(SELF_CRC_KEY) + 8 > len) {
    free(data);
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: not a dtrain checkpoint manifest", dir,
                        MANIFEST);
  }
  char *hex = field + strlen(SELF_CRC_KEY), stored[9];
  memcpy(stored, hex, 8);
  stored[8] = '\0';
  memset(hex, '0', 8);
  char actual[9];
  snprintf(actual, sizeof actual, "%08" PRIx32, dt_crc32c(0, text, len));
  memcpy(hex, stored, 8);
  if (strcmp(actual, stored) != 0) {
    free(data);
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: CRC32C %s does not match its contents (%s): "
                        "corrupt", dir, MANIFEST, stored, actual);
  }
  char what[DT_CKPT_PATH_MAX + 16];
  snprintf(what, sizeof what, "%s/%s", dir, MANIFEST);
  rc = dt_json_parse(text, len, what, out, err);
  free(data);
  return rc;
}

/* CRC32C of a file read in chunks; sets *size. */
static int crc_file(const char *path, uint64_t *size, uint32_t *crc, dt_error_t *err) {
  FILE *f;
  int rc = open_regular(path, &f, err);
  if (rc == DT_ERR_NOT_FOUND) return dt_error_set(err, DT_ERR_FORMAT, "%s: missing (%s)", path,
                                                  strerror(ENOENT));
  if (rc) return rc;
  char *buf = malloc(READ_CHUNK);
  if (!buf) {
    fclose(f);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory checking %s", path);
  }
  uint32_t c = 0;
  uint64_t total = 0;
  size_t n;
  while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
    c = dt_crc32c(c, buf, n);
    total += n;
  }
  int bad = ferror(f);
  fclose(f);
  free(buf);
  if (bad) return dt_error_set(err, DT_ERR_IO, "cannot read %s", path);
  *size = total;
  *crc = c;
  return 0;
}

/* One entry of a manifest's "files": its name, size and CRC32C (8 hex digits). */
static int manifest_entry(const dt_json_t *f, const char *dir, const char **name, uint64_t *size,
                          const char **crc, dt_error_t *err) {
  *name = *crc = "";
  *size = 0;
  const dt_json_t *n = dt_json_get_typed(f, "name", DT_JSON_STRING);
  const dt_json_t *sz = dt_json_get_typed(f, "size", DT_JSON_NUMBER);
  const dt_json_t *c = dt_json_get_typed(f, "crc32c", DT_JSON_STRING);
  if (!n || !sz || !c || strchr(n->string, '/'))
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: a bad file entry", dir, MANIFEST);
  /* A size is a whole number of bytes a double holds exactly (below 2^53). */
  if (!(sz->number >= 0 && sz->number <= 9007199254740992.0) ||
      sz->number != (double)(uint64_t)sz->number)
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: file %s has size %g, not a byte count", dir,
                        MANIFEST, n->string, sz->number);
  *name = n->string;
  *size = (uint64_t)sz->number;
  *crc = c->string;
  return 0;
}

static int size_mismatch(const char *path, uint64_t actual, uint64_t listed, dt_error_t *err) {
  return dt_error_set(err, DT_ERR_FORMAT, "%s: %" PRIu64 " bytes, the manifest says %" PRIu64
                      " (truncated or partly written)", path, actual, listed);
}

static int crc_mismatch(const char *path, uint32_t actual, const char *listed, dt_error_t *err) {
  return dt_error_set(err, DT_ERR_FORMAT, "%s: CRC32C %08" PRIx32 ", the manifest says %s (corrupt)",
                      path, actual, listed);
}

static bool listed(const char *const *names, const char *name) {
  for (; names && *names; names++)
    if (strcmp(*names, name) == 0) return true;
  return false;
}

/* The size of the regular file at path (DT_ERR_FORMAT if missing or not a file). */
static int file_size(const char *path, uint64_t *size, dt_error_t *err) {
  int fd;
  int rc = open_regular_fd(path, &fd, err);
  if (rc == DT_ERR_NOT_FOUND) return dt_error_set(err, DT_ERR_FORMAT, "%s: missing (%s)", path,
                                                  strerror(ENOENT));
  if (rc) return rc;
  struct stat st;
  rc = fstat(fd, &st) == 0 ? 0 : dt_error_set(err, DT_ERR_IO, "cannot stat %s: %s", path,
                                              strerror(errno));
  close(fd);
  *size = rc ? 0 : (uint64_t)st.st_size;
  return rc;
}

/* dt_ckpt_verify, with the files named in `deferred` checked for their size only. */
static int verify_dir(const char *dir, const char *const *deferred, dt_error_t *err) {
  dt_json_t *m;
  int rc = load_manifest(dir, &m, err);
  if (rc) return rc;
  const dt_json_t *files = dt_json_get_typed(m, "files", DT_JSON_ARRAY);
  /* Every checkpoint holds at least its model file: an empty list verifies nothing. */
  if (!files || files->count == 0)
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s/%s: no \"files\" listed", dir, MANIFEST);
  for (const dt_json_t *f = files ? files->child : NULL; f && !rc; f = f->next) {
    const char *name, *crc;
    uint64_t size;
    if ((rc = manifest_entry(f, dir, &name, &size, &crc, err))) break;
    char path[DT_CKPT_PATH_MAX];
    uint64_t actual_size = 0;
    uint32_t actual_crc = 0;
    if ((rc = path_join(path, dir, name, err))) break;
    bool later = listed(deferred, name);
    if ((rc = later ? file_size(path, &actual_size, err)
                    : crc_file(path, &actual_size, &actual_crc, err)))
      break;
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, actual_crc);
    if (actual_size != size)
      rc = size_mismatch(path, actual_size, size, err);
    else if (!later && strcmp(hex, crc) != 0)
      rc = crc_mismatch(path, actual_crc, crc, err);
  }
  dt_json_free(m);
  return rc;
}

int dt_ckpt_verify(const char *dir, dt_error_t *err) { return verify_dir(dir, NULL, err); }

/* ---- reading a file once, checking it on the way ---- */

struct dt_ckpt_in {
  int fd;
  uint64_t size, offset;
  uint32_t crc;
  char listed_crc[32];
  char *scratch; /* READ_CHUNK bytes for data read but not kept; allocated when needed */
  char path[DT_CKPT_PATH_MAX];
};

int dt_ckpt_in_open(const char *dir, const char *file, dt_ckpt_in_t **out, bool *corrupt,
                    dt_error_t *err) {
  *out = NULL;
  *corrupt = false;
  dt_ckpt_in_t *in = calloc(1, sizeof *in);
  if (!in) return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening %s/%s", dir, file);
  in->fd = -1;
  dt_json_t *m = NULL;
  int rc = path_join(in->path, dir, file, err);
  if (!rc) rc = load_manifest(dir, &m, err);
  const dt_json_t *files = m ? dt_json_get_typed(m, "files", DT_JSON_ARRAY) : NULL;
  const dt_json_t *f = files ? files->child : NULL;
  const char *name = NULL, *crc = NULL;
  uint64_t size = 0;
  for (; f && !rc; f = f->next)
    if (!(rc = manifest_entry(f, dir, &name, &size, &crc, err)) && strcmp(name, file) == 0) break;
  if (!rc && !f)
    rc = dt_error_set(err, DT_ERR_FORMAT, "%s/%s does not list %s", dir, MANIFEST, file);
  if (!rc) {
    /* Kept as listed: one that is not 8 hex digits (a longer one is cut to 31
     * characters here) can match no CRC, as in dt_ckpt_verify. */
    snprintf(in->listed_crc, sizeof in->listed_crc, "%s", crc);
    rc = open_regular_fd(in->path, &in->fd, err);
    if (rc == DT_ERR_NOT_FOUND)
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s: missing (%s)", in->path, strerror(ENOENT));
  }
  struct stat st;
  if (!rc && fstat(in->fd, &st) != 0)
    rc = dt_error_set(err, DT_ERR_IO, "cannot stat %s: %s", in->path, strerror(errno));
  if (!rc && (uint64_t)st.st_size != size) {
    rc = size_mismatch(in->path, (uint64_t)st.st_size, size, err);
    *corrupt = true;
  }
  dt_json_free(m);
  if (rc) {
    if (in->fd >= 0) close(in->fd);
    free(in);
    return rc;
  }
  in->size = size;
  *out = in;
  return 0;
}

uint64_t dt_ckpt_in_size(const dt_ckpt_in_t *in) { return in->size; }
uint64_t dt_ckpt_in_offset(const dt_ckpt_in_t *in) { return in->offset; }
const char *dt_ckpt_in_path(const dt_ckpt_in_t *in) { return in->path; }

int dt_ckpt_in_read(dt_ckpt_in_t *in, void *dst, size_t n, dt_error_t *err) {
  if (n > in->size - in->offset)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: %zu bytes wanted at byte %" PRIu64 " of %" PRIu64
                        " (truncated)", in->path, n, in->offset, in->size);
  if (!dst && n > 0 && !in->scratch && !(in->scratch = malloc(READ_CHUNK)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s", in->path);
  char *p = dst;
  while (n > 0) {
    size_t chunk = n < READ_CHUNK ? n : READ_CHUNK;
    char *to = p ? p : in->scratch;
    size_t got = 0;
    while (got < chunk) {
      ssize_t r = read(in->fd, to + got, chunk - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0)
        return dt_error_set(err, DT_ERR_IO, "cannot read %s at byte %" PRIu64 ": %s", in->path,
                            in->offset + got, strerror(errno));
      /* The file shrank after it was opened: what is missing cannot match the CRC. */
      if (r == 0)
        return dt_error_set(err, DT_ERR_FORMAT, "%s: ends at byte %" PRIu64 ", the manifest says "
                            "%" PRIu64 " (truncated or partly written)", in->path,
                            in->offset + got, in->size);
      got += (size_t)r;
    }
    /* The chunk is still in the cache: checking it now costs no second trip to memory. */
    in->crc = dt_crc32c(in->crc, to, chunk);
    in->offset += chunk;
    if (p) p += chunk;
    n -= chunk;
  }
  return 0;
}

int dt_ckpt_in_close(dt_ckpt_in_t *in, int rc, bool *corrupt, dt_error_t *err) {
  *corrupt = false;
  if (!in) return rc;
  /* An I/O or memory error says nothing about the bytes; anything else may be what a
   * damaged file looks like, so the whole file is checked before it is reported. */
  if (rc != DT_ERR_IO && rc != DT_ERR_NOMEM) {
    dt_error_t rest = {0};
    int rrc = dt_ckpt_in_read(in, NULL, (size_t)(in->size - in->offset), &rest);
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, in->crc);
    if (rrc == DT_ERR_FORMAT || (!rrc && strcmp(hex, in->listed_crc) != 0)) {
      if (rrc) dt_error_set(err, rest.code, "%s", rest.msg);
      else crc_mismatch(in->path, in->crc, in->listed_crc, err);
      *corrupt = true;
      rc = DT_ERR_FORMAT;
    } else if (rrc && !rc) {
      rc = dt_error_set(err, rest.code, "%s", rest.msg);
    }
  }
  close(in->fd);
  free(in->scratch);
  free(in);
  return rc;
}

int dt_ckpt_read_info(const char *dir, char *buf, size_t cap, dt_error_t *err) {
  void *data;
  size_t len;
  int rc = dt_ckpt_read_file(dir, MANIFEST, &data, &len, err);
  if (rc) return rc;
  /* The info object is the manifest's last member (manifest_text writes it so): it
   * ends at the last '}' before the manifest's own closing one. */
  char *info = strstr(data, "\"info\": ");
  char *end = info ? strrchr(info, '}') : NULL;
  if (end) {
    do end--;
    while (end > info && strchr(" \n", *end));
    end = *end == '}' ? end + 1 : NULL;
  }
  if (!info || !end) {
    free(data);
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: no \"info\"", dir, MANIFEST);
  }
  info += strlen("\"info\": ");
  size_t n = (size_t)(end - info);
  if (n >= cap) n = cap - 1;
  memcpy(buf, info, n);
  buf[n] = '\0';
  free(data);
  return 0;
}

int dt_ckpt_find(const char *root, const dt_ckpt_find_opts_t *opts, dt_log_t *log, char *dir,
                 dt_error_t *err) {
  dt_ckpt_wait_background();
  const char *const *deferred = opts ? opts->deferred : NULL;
  const char *const *rejected = opts ? opts->rejected : NULL;
  const char *last_rejected = NULL;
  for (const char *const *r = rejected; r && *r; r++) last_rejected = *r;
  char path[DT_CKPT_PATH_MAX];
  int rc = path_join(path, root, MANIFEST, err);
  if (rc) return rc;
  /* ROOT is a checkpoint itself: it must verify, there is nothing to fall back to. */
  if (exists(path)) {
    if ((rc = verify_dir(root, deferred, err))) return rc;
    snprintf(dir, DT_CKPT_PATH_MAX, "%s", root);
    return 0;
  }
  char **list;
  int count;
  if (list_checkpoints(root, &list, &count) != 0 || count == 0) {
    if (count == 0) free_list(list, 0);
    return dt_error_set(err, DT_ERR_NOT_FOUND, "no checkpoint in %s", root);
  }
  char latest[FILE_NAME_MAX] = "";
  bool has_latest = read_pointer(root, "latest", latest, sizeof latest);
  /* Candidates: `latest` first, then every directory from the newest name down. */
  rc = DT_ERR_NOT_FOUND;
  char reason[DT_ERROR_MSG_MAX] = "";
  int tried = 0;
  for (int i = has_latest ? -1 : 0; i < count; i++) {
    const char *name = i < 0 ? latest : list[count - 1 - i];
    if (i >= 0 && has_latest && strcmp(name, latest) == 0) continue;
    /* A directory with our kind of name but no manifest at all was never committed by
     * us (commit renames only after the manifest is written): the user's, not tried.
     * The one `latest` names is always tried, so a damaged one is reported. */
    char manifest[DT_CKPT_PATH_MAX + sizeof MANIFEST];
    snprintf(manifest, sizeof manifest, "%s/%s/%s", root, name, MANIFEST);
    if (i >= 0 && !exists(manifest)) continue;
    tried++;
    dt_error_t verr = {0};
    /* One a loader found corrupt: the last is reported now, the others were before. */
    if (listed(rejected, name)) {
      snprintf(reason, sizeof reason, "%s", opts->why ? opts->why : "corrupt");
      if (strcmp(name, last_rejected) == 0)
        dt_log_warn(log, "checkpoint %s%s cannot be used: %s", name, i < 0 ? " (latest)" : "",
                    reason);
      continue;
    }
    if (path_join(path, root, name, &verr) == 0 && verify_dir(path, deferred, &verr) == 0) {
      if (reason[0])
        dt_log_warn(log, "resuming from the older checkpoint %s instead", path);
      snprintf(dir, DT_CKPT_PATH_MAX, "%s", path);
      rc = 0;
      break;
    }
    snprintf(reason, sizeof reason, "%s", verr.msg);
    dt_log_warn(log, "checkpoint %s%s cannot be used: %s", name, i < 0 ? " (latest)" : "",
                verr.msg);
  }
  free_list(list, count);
  if (rc && !tried) return dt_error_set(err, DT_ERR_NOT_FOUND, "no checkpoint in %s", root);
  if (rc)
    return dt_error_set(err, DT_ERR_FORMAT, "no usable checkpoint in %s (the last problem: %s)",
                        root, reason);
  return 0;
}

int dt_ckpt_find_latest(const char *root, dt_log_t *log, char *dir, dt_error_t *err) {
  return dt_ckpt_find(root, NULL, log, dir, err);
}
