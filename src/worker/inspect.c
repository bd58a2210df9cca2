/* Printing what a checkpoint holds (see inspect.h). */
#define _POSIX_C_SOURCE 200809L
#include "inspect.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/checkpoint.h"
#include "dtrain/json.h"
#include "dtrain/log.h"

bool inspect_is_checkpoint(const char *path) {
  char p[DT_CKPT_PATH_MAX + 32];
  struct stat st;
  snprintf(p, sizeof p, "%s/manifest.json", path);
  return stat(p, &st) == 0;
}

/* Prints each tensor of a safetensors file with its shape and value statistics, and
 * its metadata except the (long) config, which *config receives (malloc'd) if asked. */
static int print_safetensors(FILE *out, const char *dir, const char *file, char **config,
                             dt_error_t *err) {
  void *data;
  size_t len;
  int rc = dt_ckpt_read_file(dir, file, &data, &len, err);
  if (rc) return rc;
  uint64_t hlen;
  dt_json_t *hdr = NULL;
  if (len < 8 || (memcpy(&hlen, data, 8), hlen > len - 8)) {
    free(data);
    return dt_error_set(err, DT_ERR_FORMAT, "%s/%s: not a safetensors file", dir, file);
  }
  if ((rc = dt_json_parse((const char *)data + 8, (size_t)hlen, file, &hdr, err))) {
    free(data);
    return rc;
  }
  const unsigned char *base = (const unsigned char *)data + 8 + hlen;
  fprintf(out, "%s (%zu bytes):\n", file, len);
  for (const dt_json_t *e = hdr->child; e; e = e->next) {
    if (strcmp(e->key, "__metadata__") == 0) {
      for (const dt_json_t *m = e->child; m; m = m->next) {
        if (m->type != DT_JSON_STRING) continue;
        if (strcmp(m->key, "config") == 0) {
          if (config) *config = strdup(m->string);
        } else {
          fprintf(out, "  %-28s %s\n", m->key, m->string);
        }
      }
      continue;
    }
    const dt_json_t *shape = dt_json_get_typed(e, "shape", DT_JSON_ARRAY);
    const dt_json_t *offs = dt_json_get_typed(e, "data_offsets", DT_JSON_ARRAY);
    const dt_json_t *dtype = dt_json_get_typed(e, "dtype", DT_JSON_STRING);
    char sh[96] = "(";
    size_t used = 1;
    for (const dt_json_t *d = shape ? shape->child : NULL; d; d = d->next)
      used += (size_t)snprintf(sh + used, sizeof sh - used > used ? sizeof sh - used : 0,
                               d == shape->child ? "%.0f" : ", %.0f", d->number);
    if (used < sizeof sh - 1) strcat(sh, ")");
    fprintf(out, "  %-40s %-6s %-18s", e->key, dtype ? dtype->string : "?", sh);
    if (offs && offs->count == 2 && dtype && strcmp(dtype->string, "F32") == 0 &&
        offs->child->next->number <= (double)(len - 8 - hlen) &&
        offs->child->number <= offs->child->next->number) {
      size_t b = (size_t)offs->child->number, n = ((size_t)offs->child->next->number - b) / 4;
      double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
      for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, base + b + 4 * i, 4);
        sum += v;
        sq += (double)v * v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      double mean = n ? sum / (double)n : 0, var = n ? sq / (double)n - mean * mean : 0;
      fprintf(out, " mean %+.4g std %.4g min %+.4g max %+.4g", mean, sqrt(var > 0 ? var : 0),
              n ? lo : 0, n ? hi : 0);
    }
    fputc('\n', out);
  }
  dt_json_free(hdr);
  free(data);
  return 0;
}

int inspect_checkpoint(FILE *out, const char *path, dt_error_t *err) {
  char dir[DT_CKPT_PATH_MAX];
  dt_log_t log = dt_log_make(0, 1);
  int rc = dt_ckpt_find_latest(path, &log, dir, err);
  if (rc) return rc;
  void *data;
  size_t len;
  fprintf(out, "Checkpoint %s: verified (every file's size and CRC32C match its manifest)\n\n",
          dir);
  if ((rc = dt_ckpt_read_file(dir, "manifest.json", &data, &len, err))) return rc;
  fprintf(out, "manifest.json:\n%s\n", (char *)data);
  free(data);
  if (dt_ckpt_read_file(dir, "trainer.json", &data, &len, err) == 0) {
    fprintf(out, "trainer.json (the position; epoch and batch are 0-based):\n%s\n", (char *)data);
    free(data);
  }
  char *config = NULL;
  if ((rc = print_safetensors(out, dir, "model.safetensors", &config, err))) return rc;
  fputc('\n', out);
  if (inspect_is_checkpoint(dir) &&
      (rc = print_safetensors(out, dir, "optimizer.safetensors", NULL, err)) == 0)
    fputc('\n', out);
  for (int r = 0; rc == 0; r++) {
    char file[64], p[DT_CKPT_PATH_MAX + 64];
    struct stat st;
    snprintf(file, sizeof file, "rank-%d.safetensors", r);
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (stat(p, &st) != 0) break;
    rc = print_safetensors(out, dir, file, NULL, err);
  }
  if (config) fprintf(out, "\nThe run's config:\n%s", config);
  free(config);
  return rc;
}
