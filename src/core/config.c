/* INI run configuration: parsing files and --set overrides, typed lookups that name
 * the source location of a bad value, detection of keys nobody asked for, and
 * writing the effective config back out (syntax in dtrain/config.h). */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t NOT_FOUND = SIZE_MAX;

/* Long lines and values are cut to this many characters when quoted in messages, so
 * that the message still ends with what went wrong. */
enum { QUOTE_MAX = 80 };

typedef struct {
  char *name;
  char *header_where; /* "x.ini:3" of its first header, or "--set s.k" if an override made it */
  char *where;        /* "x.ini [name]": what dt_config_where gives when only the section exists */
  size_t *entries;    /* indices into cfg->entries, in the order they were added */
  size_t n_entries, cap_entries;
  /* cfg->n_entries when the section appeared: places empty sections among the keys */
  size_t created_at;
  uint64_t hash;
  bool used; /* some lookup asked about this section */
} section_t;

typedef struct {
  size_t section;
  char *key;
  char *value;
  char *where; /* "x.ini:12" or "--set train.lr" */
  uint64_t hash;
  bool used;
} entry_t;

/* Open-addressing hash index over sections or entries, so that loading a config with
 * many keys stays linear. A slot holds index + 1; 0 marks an empty slot. */
typedef struct {
  size_t *slots;
  size_t cap; /* a power of two, at least twice the number of items */
} table_t;

struct dt_config {
  section_t *sections;
  size_t n_sections, cap_sections;
  entry_t *entries; /* in the order they were added: file order, then new overrides */
  size_t n_entries, cap_entries;
  table_t section_index, entry_index;
  /* Values and locations replaced by overrides. Callers may still hold pointers that
   * dt_config_get_string or dt_config_where gave them, so these live until free. */
  char **retired;
  size_t n_retired, cap_retired;
  char *first_origin; /* the first file loaded: dt_config_where's answer for absent sections */
  /* Keys that were looked up but absent, with the default the caller used, in order of
   * first lookup: what dt_config_to_string_all shows as defaults. */
  struct default_entry {
    char *section, *key, *value;
  } *defaults;
  size_t n_defaults, cap_defaults;
};

/* ---- small helpers ---- */

static int nomem(dt_error_t *err) {
  return dt_error_set(err, DT_ERR_NOMEM, "out of memory while handling the config");
}

/* Makes room for need elements of size elem, doubling the capacity; returns the
 * (possibly moved) array, or NULL (leaving arr intact) when memory runs out. */
static void *grow_array(void *arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return arr;
  size_t n = *cap ? *cap : 8;
  while (n < need) {
    if (n > SIZE_MAX / 2 / elem) return NULL;
    n *= 2;
  }
  void *p = realloc(arr, n * elem);
  if (p) *cap = n;
  return p;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Precision and suffix for quoting s with "%.*s%s" in at most QUOTE_MAX characters. */
static int clip(const char *s) { return strlen(s) > QUOTE_MAX ? QUOTE_MAX - 3 : (int)strlen(s); }
static const char *clip_tail(const char *s) { return strlen(s) > QUOTE_MAX ? "..." : ""; }

static bool is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Trims in place: returns the first non-space character and cuts trailing space. */
static char *trim(char *s) {
  while (is_space(*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && is_space(s[n - 1])) s[--n] = '\0';
  return s;
}

/* '#' and ';' start a comment only at the start or after whitespace, so that values
 * such as "a;b" or "run#3" survive. */
static void strip_comment(char *s) {
  for (size_t i = 0; s[i]; i++) {
    if ((s[i] == '#' || s[i] == ';') && (i == 0 || is_space(s[i - 1]))) {
      s[i] = '\0';
      return;
    }
  }
}

/* Keys may not hold '.', since "--set section.key=value" splits at the last dot and a
 * dotted key could never be overridden; whitespace in a key is almost always a typo.
 * A key starting with '#' or ';' would be written out by --print-config as a comment
 * and lost on the way back in. */
static bool key_is_valid(const char *key) {
  for (const char *p = key; *p; p++)
    if (is_space(*p) || *p == '.' || *p == '[' || *p == ']') return false;
  return *key != '\0' && *key != '#' && *key != ';';
}

/* '=' in a section name would make it unreachable with --set. */
static bool section_name_is_valid(const char *name) {
  return *name != '\0' && !strpbrk(name, "[]=");
}

static bool ascii_ieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
  return *a == *b;
}

/* Bounded string builder: counts the full length like snprintf, writes what fits and
 * keeps the buffer NUL-terminated. */
typedef struct {
  char *buf;
  size_t cap, len;
} sink_t;

static void sink_put(sink_t *s, const char *str) {
  size_t n = strlen(str);
  if (s->len < s->cap) {
    size_t room = s->cap - s->len - 1;
    size_t k = n < room ? n : room;
    memcpy(s->buf + s->len, str, k);
    s->buf[s->len + k] = '\0';
  }
  s->len += n;
}

/* ---- hash index ---- */

static uint64_t hash_str(uint64_t h, const char *s) {
  /* FNV-1a: short keys, no adversary that matters here. */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ULL;
  }
  return h;
}

static uint64_t section_hash(const char *name) { return hash_str(0xcbf29ce484222325ULL, name); }

static uint64_t entry_hash(size_t section, const char *key) {
  return hash_str(0xcbf29ce484222325ULL ^ ((uint64_t)section * 0x9e3779b97f4a7c15ULL), key);
}

static void table_put(table_t *t, uint64_t h, size_t idx) {
  size_t mask = t->cap - 1;
  size_t i = (size_t)h & mask;
  while (t->slots[i]) i = (i + 1) & mask;
  t->slots[i] = idx + 1;
}

/* Ensures room for one more item beyond the n present, rebuilding the slots when the
 * table grows; hash_at gives the stored hash of item k. */
static bool table_reserve(table_t *t, size_t n, uint64_t (*hash_at)(const dt_config_t *, size_t),
                          const dt_config_t *cfg) {
  if (2 * (n + 1) <= t->cap) return true;
  size_t cap = t->cap ? t->cap : 16;
  while (cap < 2 * (n + 1)) {
    if (cap > SIZE_MAX / 2 / sizeof(size_t)) return false;
    cap *= 2;
  }
  size_t *slots = calloc(cap, sizeof *slots);
  if (!slots) return false;
  free(t->slots);
  t->slots = slots;
  t->cap = cap;
  for (size_t k = 0; k < n; k++) table_put(t, hash_at(cfg, k), k);
  return true;
}

static uint64_t section_hash_at(const dt_config_t *cfg, size_t k) { return cfg->sections[k].hash; }
static uint64_t entry_hash_at(const dt_config_t *cfg, size_t k) { return cfg->entries[k].hash; }

static size_t section_find(const dt_config_t *cfg, const char *name) {
  const table_t *t = &cfg->section_index;
  if (!t->cap || !name) return NOT_FOUND;
  uint64_t h = section_hash(name);
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)h & mask; t->slots[i]; i = (i + 1) & mask) {
    const section_t *s = &cfg->sections[t->slots[i] - 1];
    if (s->hash == h && strcmp(s->name, name) == 0) return t->slots[i] - 1;
  }
  return NOT_FOUND;
}

static size_t entry_find(const dt_config_t *cfg, size_t section, const char *key) {
  const table_t *t = &cfg->entry_index;
  if (!t->cap || !key) return NOT_FOUND;
  uint64_t h = entry_hash(section, key);
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)h & mask; t->slots[i]; i = (i + 1) & mask) {
    const entry_t *e = &cfg->entries[t->slots[i] - 1];
    if (e->hash == h && e->section == section && strcmp(e->key, key) == 0) return t->slots[i] - 1;
  }
  return NOT_FOUND;
}

/* ---- building the config ---- */

dt_config_t *dt_config_new(void) { return calloc(1, sizeof(dt_config_t)); }

void dt_config_free(dt_config_t *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->n_sections; i++) {
    free(cfg->sections[i].name);
    free(cfg->sections[i].header_where);
    free(cfg->sections[i].where);
    free(cfg->sections[i].entries);
  }
  for (size_t i = 0; i < cfg->n_entries; i++) {
    free(cfg->entries[i].key);
    free(cfg->entries[i].value);
    free(cfg->entries[i].where);
  }
  for (size_t i = 0; i < cfg->n_retired; i++) free(cfg->retired[i]);
  for (size_t i = 0; i < cfg->n_defaults; i++) {
    free(cfg->defaults[i].section);
    free(cfg->defaults[i].key);
    free(cfg->defaults[i].value);
  }
  free(cfg->defaults);
  free(cfg->sections);
  free(cfg->entries);
  free(cfg->retired);
  free(cfg->section_index.slots);
  free(cfg->entry_index.slots);
  free(cfg->first_origin);
  free(cfg);
}

/* Finds section name or appends it; origin ("x.ini" or "--set s.k") and header_where
 * ("x.ini:3") describe where it first appeared. */
static int get_or_add_section(dt_config_t *cfg, const char *name, const char *origin,
                              const char *header_where, size_t *out, dt_error_t *err) {
  size_t found = section_find(cfg, name);
  if (found != NOT_FOUND) {
    *out = found;
    return 0;
  }
  section_t *arr = grow_array(cfg->sections, &cfg->cap_sections, cfg->n_sections + 1, sizeof *arr);
  if (!arr) return nomem(err);
  cfg->sections = arr;
  if (!table_reserve(&cfg->section_index, cfg->n_sections, section_hash_at, cfg)) return nomem(err);
  section_t s = {0};
  s.name = strdup(name);
  s.header_where = strdup(header_where);
  s.where = dup_printf("%s [%s]", origin, name);
  if (!s.name || !s.header_where || !s.where) {
    free(s.name);
    free(s.header_where);
    free(s.where);
    return nomem(err);
  }
  s.hash = section_hash(name);
  s.created_at = cfg->n_entries;
  cfg->sections[cfg->n_sections] = s;
  table_put(&cfg->section_index, s.hash, cfg->n_sections);
  *out = cfg->n_sections++;
  return 0;
}

/* Appends a new key to section; where is taken over (freed on failure). */
static int add_entry(dt_config_t *cfg, size_t section, const char *key, const char *value,
                     char *where, dt_error_t *err) {
  section_t *sec = &cfg->sections[section];
  entry_t *arr = grow_array(cfg->entries, &cfg->cap_entries, cfg->n_entries + 1, sizeof *arr);
  if (arr) cfg->entries = arr;
  size_t *idx = grow_array(sec->entries, &sec->cap_entries, sec->n_entries + 1, sizeof *idx);
  if (idx) sec->entries = idx;
  entry_t e = {0};
  e.section = section;
  e.key = strdup(key);
  e.value = strdup(value);
  e.where = where;
  if (!arr || !idx || !e.key || !e.value || !e.where ||
      !table_reserve(&cfg->entry_index, cfg->n_entries, entry_hash_at, cfg)) {
    free(e.key);
    free(e.value);
    free(e.where);
    return nomem(err);
  }
  e.hash = entry_hash(section, key);
  cfg->entries[cfg->n_entries] = e;
  table_put(&cfg->entry_index, e.hash, cfg->n_entries);
  sec->entries[sec->n_entries++] = cfg->n_entries++;
  return 0;
}

static int parse_header(dt_config_t *cfg, char *s, const char *origin, size_t lineno,
                        size_t *section, dt_error_t *err) {
  size_t n = strlen(s);
  char *close = strchr(s, ']');
  if (!close)
    return dt_error_set(err, DT_ERR_CONFIG, "%s:%zu: unclosed '[' in section header '%.*s%s'",
                        origin, lineno, clip(s), s, clip_tail(s));
  if (close != s + n - 1)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s:%zu: unexpected text after ']' in section header '%.*s%s'", origin,
                        lineno, clip(s), s, clip_tail(s));
  *close = '\0';
  char *name = trim(s + 1);
  if (!section_name_is_valid(name))
    return dt_error_set(
        err, DT_ERR_CONFIG,
        "%s:%zu: bad section name '[%.*s%s]': it must be non-empty and hold no '[', ']' or '='",
        origin, lineno, clip(name), name, clip_tail(name));
  char *where = dup_printf("%s:%zu", origin, lineno);
  if (!where) return nomem(err);
  int rc = get_or_add_section(cfg, name, origin, where, section, err);
  free(where);
  return rc;
}

/* One line of a file, already cut out and NUL-terminated (modified in place). *section
 * is the current section (NOT_FOUND before the first header). */
static int parse_line(dt_config_t *cfg, char *line, const char *origin, size_t lineno,
                      size_t *section, dt_error_t *err) {
  strip_comment(line);
  char *s = trim(line);
  if (*s == '\0') return 0;
  if (*s == '[') return parse_header(cfg, s, origin, lineno, section, err);

  char *eq = strchr(s, '=');
  if (!eq || eq == s)
    return dt_error_set(err, DT_ERR_CONFIG,
                        "%s:%zu: expected 'key = value' or '[section]', got '%.*s%s'", origin,
                        lineno, clip(s), s, clip_tail(s));
  *eq = '\0';
  char *key = trim(s);
  char *value = trim(eq + 1);
  if (!key_is_valid(key))
    return dt_error_set(
        err, DT_ERR_CONFIG,
        "%s:%zu: bad key '%.*s%s': a key may not contain whitespace, '.', '[' or ']', nor "
        "start with '#' or ';'", origin,
        lineno, clip(key), key, clip_tail(key));
  if (*section == NOT_FOUND)
    return dt_error_set(err, DT_ERR_CONFIG, "%s:%zu: key '%s' comes before any [section] header",
                        origin, lineno, key);
  size_t dup = entry_find(cfg, *section, key);
  if (dup != NOT_FOUND)
    return dt_error_set(err, DT_ERR_CONFIG, "%s:%zu: duplicate key '%s' in [%s] (first set at %s)",
                        origin, lineno, key, cfg->sections[*section].name, cfg->entries[dup].where);
  char *where = dup_printf("%s:%zu", origin, lineno);
  if (!where) return nomem(err);
  return add_entry(cfg, *section, key, value, where, err);
}

/* Parses len bytes of text. On error the entries before the bad line stay in cfg; the
 * caller is expected to give up on the whole config. */
static int parse_text(dt_config_t *cfg, const char *text, size_t len, const char *origin,
                      dt_error_t *err) {
  if (!cfg->first_origin) {
    cfg->first_origin = strdup(origin);
    if (!cfg->first_origin) return nomem(err);
  }
  size_t pos = 0;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* editors on Windows add a BOM */
  char *line = NULL;
  size_t cap = 0;
  size_t section = NOT_FOUND;
  int rc = 0;
  for (size_t lineno = 1; pos < len && rc == 0; lineno++) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
    char *p = grow_array(line, &cap, n + 1, 1);
    if (!p) {
      rc = nomem(err);
      break;
    }
    line = p;
    memcpy(line, text + pos, n);
    line[n] = '\0';
    pos += n + 1;
    if (memchr(line, '\0', n))
      rc = dt_error_set(err, DT_ERR_CONFIG, "%s:%zu: line contains a NUL byte", origin, lineno);
    else
      rc = parse_line(cfg, line, origin, lineno, &section, err);
  }
  free(line);
  return rc;
}

int dt_config_load_string(dt_config_t *cfg, const char *text, const char *origin, dt_error_t *err) {
  return parse_text(cfg, text, strlen(text), origin ? origin : "<string>", err);
}

int dt_config_load_file(dt_config_t *cfg, const char *path, dt_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return dt_error_set(err, DT_ERR_IO, "cannot open config '%s': %s", path, strerror(errno));
  /* Read the whole file: configs are small, and this puts no limit on line length. */
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    char *p = grow_array(text, &cap, len + 4096, 1);
    if (!p) {
      fclose(f);
      free(text);
      return nomem(err);
    }
    text = p;
    size_t room = cap - len;
    size_t got = fread(text + len, 1, room, f);
    len += got;
    if (got < room) break;
  }
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    free(text);
    return dt_error_set(err, DT_ERR_IO, "cannot read config '%s': %s", path, strerror(e));
  }
  fclose(f);
  int rc = parse_text(cfg, text, len, path, err);
  free(text);
  return rc;
}

static int bad_override(const char *assignment, const char *why, dt_error_t *err) {
  return dt_error_set(err, DT_ERR_ARG, "--set '%.*s%s': %s", clip(assignment), assignment,
                      clip_tail(assignment), why);
}

int dt_config_override(dt_config_t *cfg, const char *assignment, dt_error_t *err) {
  /* A line break would let the override smuggle in a second line when the config is
   * written out with dt_config_to_string. */
  if (strpbrk(assignment, "\r\n"))
    return bad_override(assignment, "a value may not contain a line break", err);
  char *copy = strdup(assignment);
  if (!copy) return nomem(err);
  /* Comments are stripped as in a file line, so "train.lr=0.1 # note" reads like
   * "lr=0.1 # note" in [train] and the value written back by dt_config_to_string
   * parses to the same. */
  strip_comment(copy);
  char *eq = strchr(copy, '=');
  char *dot = NULL;
  if (eq) {
    *eq = '\0';
    dot = strrchr(copy, '.');
  }
  if (!dot) {
    free(copy);
    return bad_override(assignment, "expected section.key=value", err);
  }
  *dot = '\0';
  char *section = trim(copy);
  char *key = trim(dot + 1);
  char *value = trim(eq + 1);
  if (!*section || !*key) {
    free(copy);
    return bad_override(assignment, "expected section.key=value", err);
  }
  if (!key_is_valid(key) || !section_name_is_valid(section)) {
    free(copy);
    return bad_override(assignment,
                        "bad section or key name (no whitespace, '.', '[' or ']' in a key, and "
                        "no '#' or ';' at its start)", err);
  }

  char *where = dup_printf("--set %s.%s", section, key);
  if (!where) {
    free(copy);
    return nomem(err);
  }
  size_t sec;
  int rc = get_or_add_section(cfg, section, where, where, &sec, err);
  if (rc) {
    free(copy);
    free(where);
    return rc;
  }
  size_t found = entry_find(cfg, sec, key);
  if (found == NOT_FOUND) {
    rc = add_entry(cfg, sec, key, value, where, err);
    free(copy);
    return rc;
  }
  /* Replace in place (the key keeps its position in file order); the old strings are
   * retired rather than freed because callers may still hold them. */
  char **ret = grow_array(cfg->retired, &cfg->cap_retired, cfg->n_retired + 2, sizeof *ret);
  char *new_value = strdup(value);
  free(copy);
  if (ret) cfg->retired = ret;
  if (!ret || !new_value) {
    free(new_value);
    free(where);
    return nomem(err);
  }
  entry_t *e = &cfg->entries[found];
  cfg->retired[cfg->n_retired++] = e->value;
  cfg->retired[cfg->n_retired++] = e->where;
  e->value = new_value;
  e->where = where;
  return 0;
}

/* ---- lookups ---- */

int dt_config_extract(dt_config_t *dst, dt_config_t *src, const char *prefix, int *count,
                      dt_error_t *err) {
  size_t plen = strlen(prefix);
  *count = 0;
  if (!dst->first_origin && src->first_origin && !(dst->first_origin = strdup(src->first_origin)))
    return nomem(err);
  for (size_t i = 0; i < src->n_sections; i++) {
    section_t *s = &src->sections[i];
    if (strncmp(s->name, prefix, plen) != 0 || s->name[plen] != '.' || !s->name[plen + 1])
      continue;
    size_t d;
    int rc = get_or_add_section(dst, s->name + plen + 1, "", s->header_where, &d, err);
    if (rc) return rc;
    /* The copy answers dt_config_where with the original section's place. */
    char *where = strdup(s->where);
    if (!where) return nomem(err);
    free(dst->sections[d].where);
    dst->sections[d].where = where;
    s->used = true;
    for (size_t k = 0; k < s->n_entries; k++) {
      entry_t *e = &src->entries[s->entries[k]];
      char *ew = strdup(e->where);
      if (!ew) return nomem(err);
      if ((rc = add_entry(dst, d, e->key, e->value, ew, err))) return rc;
      e->used = true;
    }
    (*count)++;
  }
  return 0;
}

/* Lookups on a const config still record that a section was asked about: the flags
 * live in the separately allocated section array, bookkeeping for check_unused that
 * does not change what the config says. */
static void mark_section(const dt_config_t *cfg, size_t s) { cfg->sections[s].used = true; }

bool dt_config_has_section(const dt_config_t *cfg, const char *section) {
  size_t s = section_find(cfg, section);
  if (s == NOT_FOUND) return false;
  mark_section(cfg, s);
  return true;
}

/* Marks the section but not the key: code that merely tests for a key (e.g. to reject
 * it for some layer type) has not consumed it. */
bool dt_config_has_key(const dt_config_t *cfg, const char *section, const char *key) {
  size_t s = section_find(cfg, section);
  if (s == NOT_FOUND) return false;
  mark_section(cfg, s);
  return entry_find(cfg, s, key) != NOT_FOUND;
}

/* The entry for a getter, marking it and its section as used; NULL if absent. */
static entry_t *lookup(dt_config_t *cfg, const char *section, const char *key) {
  size_t s = section_find(cfg, section);
  if (s == NOT_FOUND) return NULL;
  mark_section(cfg, s);
  size_t e = entry_find(cfg, s, key);
  if (e == NOT_FOUND) return NULL;
  cfg->entries[e].used = true;
  return &cfg->entries[e];
}

/* Records that [section] key was absent and `value` (the caller's default, as text)
 * was used instead; the first lookup's default wins. Out of memory only loses the
 * record: defaults are shown to people, never read back. */
static void note_default(dt_config_t *cfg, const char *section, const char *key,
                         const char *value) {
  for (size_t i = 0; i < cfg->n_defaults; i++)
    if (strcmp(cfg->defaults[i].section, section) == 0 && strcmp(cfg->defaults[i].key, key) == 0)
      return;
  struct default_entry *grown =
      grow_array(cfg->defaults, &cfg->cap_defaults, cfg->n_defaults + 1, sizeof *grown);
  if (!grown) return;
  cfg->defaults = grown;
  struct default_entry d = {strdup(section), strdup(key), strdup(value)};
  if (!d.section || !d.key || !d.value) {
    free(d.section);
    free(d.key);
    free(d.value);
    return;
  }
  cfg->defaults[cfg->n_defaults++] = d;
}

/* "x.ini:12: [train] batch_size = '12abc': <why>" */
static int bad_value(const dt_config_t *cfg, const entry_t *e, dt_error_t *err, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
static int bad_value(const dt_config_t *cfg, const entry_t *e, dt_error_t *err, const char *fmt,
                     ...) {
  char why[DT_ERROR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] %s = '%.*s%s': %s", e->where,
                      cfg->sections[e->section].name, e->key, clip(e->value), e->value,
                      clip_tail(e->value), why);
}

/* A missing key with def == NULL gives *out = NULL, for optional strings. */
int dt_config_get_string(dt_config_t *cfg, const char *section, const char *key, const char *def,
                         const char **out, dt_error_t *err) {
  (void)err;
  entry_t *e = lookup(cfg, section, key);
  *out = e ? e->value : def;
  if (!e && def) note_default(cfg, section, key, def);
  return 0;
}

int dt_config_get_int(dt_config_t *cfg, const char *section, const char *key, long def, long min,
                      long max, long *out, dt_error_t *err) {
  entry_t *e = lookup(cfg, section, key);
  if (!e) {
    char text[32];
    snprintf(text, sizeof text, "%ld", def);
    note_default(cfg, section, key, text);
    *out = def;
    return 0;
  }
  const char *s = e->value;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0') return bad_value(cfg, e, err, "not an integer");
  /* On overflow strtol clamps to LONG_MIN/LONG_MAX: report it as out of range. */
  if (errno == ERANGE || v < min || v > max)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] %s = %.*s%s: must be between %ld and %ld",
                        e->where, cfg->sections[e->section].name, e->key, clip(s), s, clip_tail(s),
                        min, max);
  *out = v;
  return 0;
}

int dt_config_get_double(dt_config_t *cfg, const char *section, const char *key, double def,
                         double min, double max, double *out, dt_error_t *err) {
  entry_t *e = lookup(cfg, section, key);
  if (!e) {
    char text[32];
    snprintf(text, sizeof text, "%g", def);
    note_default(cfg, section, key, text);
    *out = def;
    return 0;
  }
  const char *s = e->value;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0') return bad_value(cfg, e, err, "not a number");
  /* Overflow gives inf with ERANGE; underflow gives a tiny finite value, which is fine. */
  if (!isfinite(v)) return bad_value(cfg, e, err, "not a finite number");
  if (v < min || v > max)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: [%s] %s = %.*s%s: must be between %g and %g",
                        e->where, cfg->sections[e->section].name, e->key, clip(s), s, clip_tail(s),
                        min, max);
  *out = v;
  return 0;
}

int dt_config_get_bool(dt_config_t *cfg, const char *section, const char *key, bool def, bool *out,
                       dt_error_t *err) {
  entry_t *e = lookup(cfg, section, key);
  if (!e) {
    note_default(cfg, section, key, def ? "true" : "false");
    *out = def;
    return 0;
  }
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (ascii_ieq(e->value, yes[i])) {
      *out = true;
      return 0;
    }
    if (ascii_ieq(e->value, no[i])) {
      *out = false;
      return 0;
    }
  }
  return bad_value(cfg, e, err, "expected true/false, yes/no, on/off or 1/0");
}

/* A missing key with def == NULL gives *out = -1, for optional choices. A def that is
 * not among the choices is the caller's bug and is reported as DT_ERR_ARG. */
int dt_config_get_choice(dt_config_t *cfg, const char *section, const char *key, const char *def,
                         const char *const *choices, int *out, dt_error_t *err) {
  entry_t *e = lookup(cfg, section, key);
  const char *want = e ? e->value : def;
  if (!want) {
    *out = -1;
    return 0;
  }
  if (!e) note_default(cfg, section, key, def);
  for (int i = 0; choices[i]; i++) {
    if (strcmp(choices[i], want) == 0) {
      *out = i;
      return 0;
    }
  }
  char list[DT_ERROR_MSG_MAX];
  sink_t sink = {list, sizeof list, 0};
  list[0] = '\0';
  for (int i = 0; choices[i]; i++) {
    if (i) sink_put(&sink, ", ");
    sink_put(&sink, choices[i]);
  }
  if (!e)
    return dt_error_set(err, DT_ERR_ARG, "[%s] %s: default '%s' is not one of %s", section, key,
                        def, list);
  return bad_value(cfg, e, err, "expected one of %s", list);
}

/* Empty value gives an empty list (*count = 0), like a missing key. */
int dt_config_get_int_list(dt_config_t *cfg, const char *section, const char *key, int *out,
                           int max, int *count, dt_error_t *err) {
  *count = 0;
  entry_t *e = lookup(cfg, section, key);
  if (!e || e->value[0] == '\0') return 0;
  char *copy = strdup(e->value);
  if (!copy) return nomem(err);
  int n = 0;
  int rc = 0;
  char *p = copy;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    char *item = trim(p);
    if (*item == '\0') {
      rc = bad_value(cfg, e, err, "element %d is empty", n + 1);
      break;
    }
    bool digits = true;
    for (const char *q = item; *q; q++) digits = digits && isdigit((unsigned char)*q);
    errno = 0;
    long v = digits ? strtol(item, NULL, 10) : 0;
    if (!digits || errno == ERANGE || v < 1 || v > INT_MAX) {
      rc = bad_value(cfg, e, err, "element %d ('%.*s%s') is not a positive integer", n + 1,
                     clip(item), item, clip_tail(item));
      break;
    }
    if (n >= max) {
      rc = bad_value(cfg, e, err, "more than %d values", max);
      break;
    }
    out[n++] = (int)v;
    if (!comma) break;
    p = comma + 1;
  }
  free(copy);
  if (rc == 0) *count = n;
  return rc;
}

typedef struct {
  long number;
  size_t section;
} numbered_t;

static int cmp_numbered(const void *a, const void *b) {
  long x = ((const numbered_t *)a)->number, y = ((const numbered_t *)b)->number;
  return (x > y) - (x < y);
}

int dt_config_numbered_sections(const dt_config_t *cfg, const char *prefix, const char **names,
                                int max, int *count, dt_error_t *err) {
  *count = 0;
  size_t plen = strlen(prefix);
  numbered_t *found = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < cfg->n_sections; i++) {
    const section_t *s = &cfg->sections[i];
    if (strncmp(s->name, prefix, plen) != 0) continue;
    const char *suffix = s->name + plen;
    bool digits = *suffix != '\0';
    for (const char *q = suffix; *q; q++) digits = digits && isdigit((unsigned char)*q);
    errno = 0;
    long v = digits ? strtol(suffix, NULL, 10) : 0;
    if (!digits || errno == ERANGE || v < 1) {
      free(found);
      return dt_error_set(err, DT_ERR_CONFIG,
                          "%s: section [%s]: expected [%sN] with N a positive integer",
                          s->header_where, s->name, prefix);
    }
    numbered_t *p = grow_array(found, &cap, n + 1, sizeof *p);
    if (!p) {
      free(found);
      return nomem(err);
    }
    found = p;
    found[n++] = (numbered_t){v, i};
  }
  if (n > (size_t)INT_MAX) {
    free(found);
    return dt_error_set(err, DT_ERR_CONFIG, "too many [%sN] sections", prefix);
  }
  if (n) qsort(found, n, sizeof *found, cmp_numbered);
  /* Repeated headers merge, so equal numbers can only come from spellings such as
   * layer.1 and layer.01. */
  for (size_t i = 1; i < n; i++) {
    if (found[i].number == found[i - 1].number) {
      const section_t *a = &cfg->sections[found[i - 1].section],
                      *b = &cfg->sections[found[i].section];
      const section_t *later = a->created_at > b->created_at ? a : b, *earlier = later == a ? b : a;
      int rc = dt_error_set(err, DT_ERR_CONFIG, "%s: section [%s] has the same number as [%s] (%s)",
                            later->header_where, later->name, earlier->name, earlier->header_where);
      free(found);
      return rc;
    }
  }
  for (size_t i = 0; i < n; i++) {
    mark_section(cfg, found[i].section);
    if ((int)i < max && names) names[i] = cfg->sections[found[i].section].name;
  }
  *count = (int)n;
  free(found);
  return 0;
}

const char *dt_config_where(const dt_config_t *cfg, const char *section, const char *key) {
  size_t s = section_find(cfg, section);
  if (s == NOT_FOUND) return cfg->first_origin ? cfg->first_origin : "config";
  size_t e = key ? entry_find(cfg, s, key) : NOT_FOUND;
  return e != NOT_FOUND ? cfg->entries[e].where : cfg->sections[s].where;
}

int dt_config_check_unused(const dt_config_t *cfg, dt_error_t *err) {
  size_t first = NOT_FOUND;
  for (size_t i = 0; i < cfg->n_entries && first == NOT_FOUND; i++)
    if (!cfg->entries[i].used) first = i;
  /* A header with no keys that nobody asked about is reported too, at the header,
   * if it comes before the first unused key. */
  for (size_t i = 0; i < cfg->n_sections; i++) {
    const section_t *s = &cfg->sections[i];
    if (s->used || s->n_entries > 0) continue;
    if (first != NOT_FOUND && s->created_at > first) break;
    return dt_error_set(err, DT_ERR_CONFIG, "%s: unknown section [%s]", s->header_where, s->name);
  }
  if (first == NOT_FOUND) return 0;
  const entry_t *e = &cfg->entries[first];
  const section_t *s = &cfg->sections[e->section];
  if (!s->used)
    return dt_error_set(err, DT_ERR_CONFIG, "%s: unknown section [%s]", e->where, s->name);
  return dt_error_set(err, DT_ERR_CONFIG, "%s: unknown key '%s' in [%s]", e->where, e->key,
                      s->name);
}

int dt_config_foreach(const dt_config_t *cfg,
                      int (*fn)(void *ctx, const char *section, const char *key,
                                const char *value),
                      void *ctx) {
  for (size_t i = 0; i < cfg->n_sections; i++) {
    const section_t *s = &cfg->sections[i];
    for (size_t k = 0; k < s->n_entries; k++) {
      const entry_t *e = &cfg->entries[s->entries[k]];
      int rc = fn(ctx, s->name, e->key, e->value);
      if (rc) return rc;
    }
  }
  return 0;
}

/* The defaults noted for section `name`, as comment lines "# key = value (default)". */
static void put_defaults(const dt_config_t *cfg, const char *name, sink_t *sink) {
  for (size_t i = 0; i < cfg->n_defaults; i++) {
    const struct default_entry *d = &cfg->defaults[i];
    if (strcmp(d->section, name) != 0) continue;
    sink_put(sink, "# ");
    sink_put(sink, d->key);
    sink_put(sink, d->value[0] ? " = " : " =");
    sink_put(sink, d->value);
    sink_put(sink, "  (default)\n");
  }
}

static size_t write_config(const dt_config_t *cfg, bool with_defaults, char *buf, size_t cap) {
  sink_t sink = {buf, buf ? cap : 0, 0};
  if (sink.cap) buf[0] = '\0';
  for (size_t i = 0; i < cfg->n_sections; i++) {
    const section_t *s = &cfg->sections[i];
    if (i) sink_put(&sink, "\n");
    sink_put(&sink, "[");
    sink_put(&sink, s->name);
    sink_put(&sink, "]\n");
    for (size_t k = 0; k < s->n_entries; k++) {
      const entry_t *e = &cfg->entries[s->entries[k]];
      sink_put(&sink, e->key);
      /* A value starting with '#' or ';' must touch the '=' (as it did in the input),
       * or reading the output back would take it for a comment; an empty value gets
       * no trailing space. */
      bool tight = e->value[0] == '\0' || e->value[0] == '#' || e->value[0] == ';';
      sink_put(&sink, tight ? " =" : " = ");
      sink_put(&sink, e->value);
      sink_put(&sink, "\n");
    }
    if (with_defaults) put_defaults(cfg, s->name, &sink);
  }
  /* Sections that were only looked up: their header as a comment too, so that the
   * text read back is the same config. */
  for (size_t i = 0; with_defaults && i < cfg->n_defaults; i++) {
    const char *name = cfg->defaults[i].section;
    bool shown = section_find(cfg, name) != NOT_FOUND;
    for (size_t j = 0; j < i && !shown; j++) shown = strcmp(cfg->defaults[j].section, name) == 0;
    if (shown) continue;
    sink_put(&sink, sink.len ? "\n# [" : "# [");
    sink_put(&sink, name);
    sink_put(&sink, "]\n");
    put_defaults(cfg, name, &sink);
  }
  return sink.len;
}

size_t dt_config_to_string(const dt_config_t *cfg, char *buf, size_t cap) {
  return write_config(cfg, false, buf, cap);
}

size_t dt_config_to_string_all(const dt_config_t *cfg, char *buf, size_t cap) {
  return write_config(cfg, true, buf, cap);
}
