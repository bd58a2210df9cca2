/* The agreement check (see agreement.h).
 *
 * The common case costs one all-gather of a fixed-size summary (sizes and a 64-bit
 * hash of the canonical config text). Only when the summaries differ do the ranks
 * exchange the texts themselves, so that the message can say which keys differ and
 * how, not just that a hash does. */
#include "agreement.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t num_params, steps_per_epoch, nbuckets, resume;
  uint64_t text_len, text_hash;
} summary_t;

static const char *const checked_sections[] = {"model",      "optimizer",      "schedule",
                                               "train",      "data",           "sync",
                                               "checkpoint", "early_stopping", "reduce_lr",
                                               "augment",    NULL};
/* Paths may differ between hosts (each has its own copy of the data), and so may the
 * threads of each process. */
static const char *const per_rank_keys[] = {
    "data.dir",          "data.train_images", "data.train_labels", "data.validation_images",
    "data.validation_labels", "data.test_images", "data.test_labels", "data.train",
    "data.validation",   "data.test",         "data.train_x",      "data.train_y",
    "data.validation_x", "data.validation_y", "data.test_x",       "data.test_y",
    "data.threads",      "train.threads",     "sync.timeout_s",    NULL};

static bool in_list(const char *const *list, const char *s) {
  for (int i = 0; list[i]; i++)
    if (strcmp(list[i], s) == 0) return true;
  return false;
}

static bool checked(const char *section, const char *name) {
  return (strncmp(section, "layer.", 6) == 0 || in_list(checked_sections, section)) &&
         !in_list(per_rank_keys, name);
}

static int cmp_lines(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The checked entries as "section.key=value" lines, collected by collect_entry. */
typedef struct {
  char **lines;
  size_t n, cap;
  size_t total; /* bytes of all lines with their newlines, plus the final NUL */
} entries_t;

static int collect_entry(void *ctx, const char *section, const char *key, const char *value) {
  entries_t *e = ctx;
  size_t len = strlen(section) + strlen(key) + strlen(value) + 3;
  char *entry = malloc(len);
  if (!entry) return -1;
  snprintf(entry, len, "%s.%s", section, key);
  if (!checked(section, entry)) {
    free(entry);
    return 0;
  }
  snprintf(entry, len, "%s.%s=%s", section, key, value);
  if (e->n == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 64;
    char **lines = realloc(e->lines, cap * sizeof *lines);
    if (!lines) {
      free(entry);
      return -1;
    }
    e->lines = lines;
    e->cap = cap;
  }
  e->lines[e->n++] = entry;
  e->total += len;
  return 0;
}

/* The checked entries as sorted "section.key=value" lines, so that the same settings
 * give the same text whatever their order in the file or on the command line. */
static char *canonical_text(const dt_config_t *cfg, dt_error_t *err) {
  entries_t e = {.total = 1};
  char *out = NULL;
  if (dt_config_foreach(cfg, collect_entry, &e) == 0 && (out = malloc(e.total))) {
    qsort(e.lines, e.n, sizeof *e.lines, cmp_lines);
    size_t used = 0;
    for (size_t i = 0; i < e.n; i++) used += (size_t)sprintf(out + used, "%s\n", e.lines[i]);
    out[used] = '\0';
  } else {
    dt_error_set(err, DT_ERR_NOMEM, "out of memory describing the run for the agreement check");
  }
  for (size_t i = 0; i < e.n; i++) free(e.lines[i]);
  free(e.lines);
  return out;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
  return h;
}

/* Appends to a message, silently cut at its capacity. */
typedef struct {
  char *buf;
  size_t cap, used;
} msg_t;

static void put(msg_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(msg_t *m, const char *fmt, ...) {
  if (m->used >= m->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(m->buf + m->used, m->cap - m->used, fmt, ap);
  va_end(ap);
  m->used += n > 0 ? (size_t)n : 0;
}

/* The value of key `name` ("section.key") in a canonical text, or NULL; *len is the
 * value's length. */
static const char *find_value(const char *text, const char *name, size_t name_len, size_t *len) {
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    if ((size_t)(end - line) > name_len && strncmp(line, name, name_len) == 0 &&
        line[name_len] == '=') {
      *len = (size_t)(end - line) - name_len - 1;
      return line + name_len + 1;
    }
    line = *end ? end + 1 : end;
  }
  return NULL;
}

/* Lists the keys whose values differ between rank r's text and rank 0's. */
static void diff_texts(msg_t *m, int r, const char *mine, const char *ref) {
  int shown = 0, more = 0;
  for (int pass = 0; pass < 2; pass++) {
    /* Pass 0: keys of rank r (changed or only there); pass 1: keys only rank 0 has. */
    const char *text = pass == 0 ? mine : ref, *other = pass == 0 ? ref : mine;
    for (const char *line = text; *line;) {
      const char *end = strchr(line, '\n');
      if (!end) end = line + strlen(line);
      const char *eq = memchr(line, '=', (size_t)(end - line));
      if (eq) {
        size_t name_len = (size_t)(eq - line), vlen = (size_t)(end - eq - 1), olen = 0;
        const char *ov = find_value(other, line, name_len, &olen);
        bool differs = pass == 0 ? !ov || olen != vlen || strncmp(ov, eq + 1, vlen) != 0 : !ov;
        if (differs && shown >= 6) {
          more++;
        } else if (differs) {
          shown++;
          if (ov)
            put(m, "; %.*s is '%.*s' on rank %d but '%.*s' on rank 0", (int)name_len, line,
                (int)vlen, eq + 1, r, (int)olen, ov);
          else
            put(m, "; %.*s = %.*s is set on rank %d only", (int)name_len, line, (int)vlen,
                eq + 1, pass == 0 ? r : 0);
        }
      }
      line = *end ? end + 1 : end;
    }
  }
  if (more) put(m, "; and %d more config difference%s", more, more == 1 ? "" : "s");
}

int agreement_check(dt_comm_t *comm, const dt_config_t *cfg, const run_shape_t *shape,
                    dt_error_t *err) {
  int world = comm->world, rc = 0;
  char *text = canonical_text(cfg, err);
  if (!text) return DT_ERR_NOMEM;
  size_t len = strlen(text);
  summary_t mine = {shape->num_params, (uint64_t)shape->steps_per_epoch,
                    (uint64_t)shape->nbuckets, shape->resume, len, fnv1a(text, len)};
  summary_t *all = calloc((size_t)world, sizeof *all);
  char *texts = NULL, *padded = NULL;
  if (!all) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory for the agreement check");
    goto done;
  }
  if ((rc = dt_comm_allgather(comm, &mine, all, sizeof mine, err))) {
    dt_error_prefix(err, "agreement check at start: ");
    goto done;
  }
  bool same = true;
  size_t longest = 0;
  for (int r = 0; r < world; r++) {
    same = same && memcmp(&all[r], &all[0], sizeof mine) == 0;
    if (all[r].text_len > longest) longest = (size_t)all[r].text_len;
  }
  if (same) goto done;

  /* Every rank saw the same summaries, so every rank takes this path together. */
  size_t stride = longest + 1;
  padded = calloc(stride, 1);
  texts = malloc(stride * (size_t)world);
  if (!padded || !texts) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory for the agreement check");
    goto done;
  }
  memcpy(padded, text, len);
  if ((rc = dt_comm_allgather(comm, padded, texts, stride, err))) {
    dt_error_prefix(err, "agreement check at start: ");
    goto done;
  }
  char buf[DT_ERROR_MSG_MAX];
  msg_t m = {buf, sizeof buf, 0};
  put(&m, "the %d ranks do not agree on the run", world);
  int listed = 0, differing = 0;
  for (int r = 1; r < world; r++) {
    const summary_t *a = &all[r], *b = &all[0];
    if (memcmp(a, b, sizeof *a) == 0) continue;
    if (differing++ >= 4) continue;
    listed++;
    if (a->num_params != b->num_params)
      put(&m, "; rank %d has %llu parameters, rank 0 has %llu", r,
          (unsigned long long)a->num_params, (unsigned long long)b->num_params);
    if (a->steps_per_epoch != b->steps_per_epoch)
      put(&m, "; rank %d has %llu steps per epoch, rank 0 has %llu", r,
          (unsigned long long)a->steps_per_epoch, (unsigned long long)b->steps_per_epoch);
    if (a->nbuckets != b->nbuckets)
      put(&m, "; rank %d has %llu gradient bucket(s), rank 0 has %llu", r,
          (unsigned long long)a->nbuckets, (unsigned long long)b->nbuckets);
    if (a->resume != b->resume)
      put(&m, "; rank %d was started %s --resume, rank 0 %s", r, a->resume ? "with" : "without",
          b->resume ? "with it" : "without");
    if (a->text_hash != b->text_hash || a->text_len != b->text_len) {
      const char *ta = texts + (size_t)r * stride, *tb = texts;
      size_t before = m.used;
      diff_texts(&m, r, ta, tb);
      if (m.used == before)
        put(&m, "; the config of rank %d differs from rank 0's (hash %016llx vs %016llx)", r,
            (unsigned long long)a->text_hash, (unsigned long long)b->text_hash);
    }
  }
  if (differing > listed) put(&m, "; %d more rank(s) differ from rank 0", differing - listed);
  put(&m, ". Every rank stops: start all ranks with the same config and options.");
  rc = dt_error_set(err, DT_ERR_MISMATCH, "%s", buf);
done:
  free(text);
  free(all);
  free(padded);
  free(texts);
  return rc;
}
