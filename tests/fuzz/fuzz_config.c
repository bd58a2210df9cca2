/* libFuzzer target for the INI config reader: a run config file and the --set
 * overrides of a command line, both written by users.
 *
 * Input: the config text up to the first NUL byte; every further NUL-separated piece is
 * one "section.key=value" override. The text is loaded with dt_config_load_string and
 * the overrides applied with dt_config_override (failures are fine: the config must
 * stay usable). Then every entry is looked up with every typed getter, and the answers
 * must agree with each other and with dt_config_foreach; once every key has been asked
 * for, dt_config_check_unused may only complain about a section without keys. The
 * config is written out with dt_config_to_string (also into buffers that are too
 * short), and that text must load again into the same entries and print the same.
 * Nothing may crash, read out of bounds, or leak. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/config.h"

enum { MAX_OVERRIDES = 16, MAX_LIST = 8, MAX_NUMBERED = 8 };

/* Entries as dt_config_foreach lists them, copied. */
typedef struct {
  char **s; /* section, key, value, section, key, value, ... */
  size_t n, cap;
} entries_t;

static int collect(void *ctx, const char *section, const char *key, const char *value) {
  entries_t *e = ctx;
  if (e->n + 3 > e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 48;
    char **s = realloc(e->s, cap * sizeof *s);
    if (!s) abort();
    e->s = s;
    e->cap = cap;
  }
  e->s[e->n++] = strdup(section);
  e->s[e->n++] = strdup(key);
  e->s[e->n++] = strdup(value);
  if (!e->s[e->n - 1] || !e->s[e->n - 2] || !e->s[e->n - 3]) abort();
  return 0;
}

static void entries_free(entries_t *e) {
  for (size_t i = 0; i < e->n; i++) free(e->s[i]);
  free(e->s);
}

/* dt_config_to_string into a new buffer, checked against its own size query and
 * against a buffer cut short at `cut` bytes. */
static char *print(const dt_config_t *cfg, size_t cut) {
  size_t n = dt_config_to_string(cfg, NULL, 0);
  char *buf = malloc(n + 1);
  if (!buf) abort();
  if (dt_config_to_string(cfg, buf, n + 1) != n || strlen(buf) != n) abort();
  if (cut > n) cut = n;
  char *part = malloc(cut + 1);
  if (!part) abort();
  if (dt_config_to_string(cfg, part, cut + 1) != n || strlen(part) != cut ||
      memcmp(part, buf, cut) != 0)
    abort();
  free(part);
  return buf;
}

/* Every getter on one entry; the answers must fit what the value says. */
static void look_up(dt_config_t *cfg, const char *section, const char *key, const char *value) {
  dt_error_t err;
  if (!dt_config_has_section(cfg, section) || !dt_config_has_key(cfg, section, key)) abort();
  const char *where = dt_config_where(cfg, section, key);
  if (!where || !where[0]) abort();

  const char *s;
  if (dt_config_get_string(cfg, section, key, NULL, &s, &err) || !s || strcmp(s, value) != 0)
    abort();

  long l;
  int rc_int = dt_config_get_int(cfg, section, key, 0, LONG_MIN, LONG_MAX, &l, &err);
  double d;
  int rc_dbl = dt_config_get_double(cfg, section, key, 0, -DBL_MAX, DBL_MAX, &d, &err);
  if (rc_dbl == 0 && !isfinite(d)) abort();
  /* A decimal integer is also a number, and the same one while a double holds it. */
  if (rc_int == 0 && (rc_dbl != 0 || (l > -(1L << 52) && l < (1L << 52) && d != (double)l)))
    abort();
  /* A narrow range: the error must be a config error, the value untouched. */
  long narrow = 7;
  int rc = dt_config_get_int(cfg, section, key, 3, 0, 9, &narrow, &err);
  if (rc == 0 ? narrow < 0 || narrow > 9 : (err.code != DT_ERR_CONFIG || !err.msg[0])) abort();

  bool b;
  rc = dt_config_get_bool(cfg, section, key, false, &b, &err);
  if (rc != 0 && err.code != DT_ERR_CONFIG) abort();

  /* The value itself is always one of the choices it is offered among. */
  const char *choices[] = {"alpha", value, NULL};
  int idx;
  if (dt_config_get_choice(cfg, section, key, "alpha", choices, &idx, &err) ||
      strcmp(choices[idx], value) != 0)
    abort();
  const char *other[] = {"sgd", "adam", NULL};
  rc = dt_config_get_choice(cfg, section, key, NULL, other, &idx, &err);
  if (rc == 0 ? strcmp(other[idx], value) != 0 : err.code != DT_ERR_CONFIG) abort();

  int list[MAX_LIST], count = -1;
  rc = dt_config_get_int_list(cfg, section, key, list, MAX_LIST, &count, &err);
  if (rc == 0) {
    if (count < 0 || count > MAX_LIST || (count == 0 && value[0])) abort();
    for (int i = 0; i < count; i++)
      if (list[i] < 1) abort();
  } else if (count != 0 || err.code != DT_ERR_CONFIG) {
    abort();
  }
}

static void compare(const entries_t *a, const entries_t *b) {
  if (a->n != b->n) abort();
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->s[i], b->s[i]) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  const char *overrides[MAX_OVERRIDES];
  int n_overrides = 0;
  for (size_t pos = strlen(text) + 1; pos < size && n_overrides < MAX_OVERRIDES;
       pos += strlen(text + pos) + 1)
    overrides[n_overrides++] = text + pos;

  dt_error_t err;
  dt_config_t *cfg = dt_config_new();
  if (!cfg) abort();
  int loaded = dt_config_load_string(cfg, text, "fuzz.ini", &err);
  if (loaded != 0 && (loaded != err.code || !err.msg[0])) abort();
  for (int i = 0; i < n_overrides; i++) {
    int rc = dt_config_override(cfg, overrides[i], &err);
    if (rc != 0 && (rc != err.code || !err.msg[0])) abort();
  }

  /* Before anything was looked up: every entry (if any) is unused. */
  entries_t entries = {0};
  if (dt_config_foreach(cfg, collect, &entries) != 0) abort();
  int unused = dt_config_check_unused(cfg, &err);
  if (entries.n > 0 && unused == 0) abort();

  for (size_t i = 0; i < entries.n; i += 3)
    look_up(cfg, entries.s[i], entries.s[i + 1], entries.s[i + 2]);
  /* Absent keys give the defaults. */
  long l;
  const char *s;
  if (!dt_config_has_key(cfg, "train", "no key has this name") &&
      (dt_config_get_int(cfg, "train", "no key has this name", 5, 0, 9, &l, &err) || l != 5 ||
       dt_config_get_string(cfg, "train", "no key has this name", "x", &s, &err) || strcmp(s, "x")))
    abort();
  if (!dt_config_where(cfg, "no such section", NULL)) abort();

  const char *names[MAX_NUMBERED];
  int count;
  if (dt_config_numbered_sections(cfg, "layer.", names, MAX_NUMBERED, &count, &err) == 0) {
    for (int i = 0; i < count && i < MAX_NUMBERED; i++)
      if (strncmp(names[i], "layer.", 6) != 0 || !dt_config_has_section(cfg, names[i])) abort();
    for (int i = 1; i < count && i < MAX_NUMBERED; i++)
      if (strtol(names[i - 1] + 6, NULL, 10) >= strtol(names[i] + 6, NULL, 10)) abort();
  }
  /* Every key was asked for: only a section without keys can be left over. */
  if (dt_config_check_unused(cfg, &err) != 0 && !strstr(err.msg, "unknown section")) abort();

  /* Printed and read back: the same entries, the same text. */
  char *printed = print(cfg, size / 2);
  dt_config_t *again = dt_config_new();
  if (!again) abort();
  if (dt_config_load_string(again, printed, "printed.ini", &err) != 0) abort();
  entries_t entries2 = {0};
  if (dt_config_foreach(again, collect, &entries2) != 0) abort();
  compare(&entries, &entries2);
  char *printed2 = print(again, 0);
  if (strcmp(printed, printed2) != 0) abort();

  free(printed2);
  free(printed);
  entries_free(&entries2);
  entries_free(&entries);
  dt_config_free(again);
  dt_config_free(cfg);
  free(text);
  return 0;
}
