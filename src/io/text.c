/* Text datasets (see text.h): the TSV's lines checked and split into label and text, the
 * tokens of every line interned in one pass (counted only in the training lines), then
 * the vocabulary and the classes chosen and the interned indices turned into ids.
 *
 * A test or validation file loaded with vocab_from reads the training set's vocabulary
 * and class names from its meta_json and class_names, the same text a checkpoint keeps:
 * so prediction can later rebuild it from there, and nothing of the training set is
 * referenced after the load. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/text.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/json.h"
#include "text_tokens.h"
#include "textfile.h"

/* ---- Interned strings: one arena of NUL-terminated strings and an open-addressing
 * table of indices into the list of entries. ---- */

typedef struct {
  size_t off, len;
  uint64_t hash;
  long count; /* occurrences in the training lines */
} entry_t;

typedef struct {
  char *arena;
  size_t used, cap;
  entry_t *e;
  size_t n, ecap;
  size_t *slots; /* entry index + 1; 0 is free */
  size_t nslots; /* a power of two, at least twice n */
} strtab_t;

static void strtab_free(strtab_t *t) {
  free(t->arena);
  free(t->e);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

static uint64_t hash_bytes(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
  return h;
}

static const char *strtab_str(const strtab_t *t, size_t i) { return t->arena + t->e[i].off; }

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *bigger = realloc(*p, c * size);
  if (!bigger) return false;
  *p = bigger;
  *cap = c;
  return true;
}

static bool rehash(strtab_t *t, size_t nslots) {
  size_t *slots = calloc(nslots, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < t->n; i++) {
    size_t s = (size_t)t->e[i].hash & (nslots - 1);
    while (slots[s]) s = (s + 1) & (nslots - 1);
    slots[s] = i + 1;
  }
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  return true;
}

/* Finds s[0, len); with insert, adds it when missing. Returns 1 and *idx when found or
 * added, 0 when missing, -1 when out of memory. */
static int strtab_find(strtab_t *t, const char *s, size_t len, bool insert, size_t *idx) {
  uint64_t h = hash_bytes(s, len);
  if (t->nslots) {
    for (size_t k = (size_t)h & (t->nslots - 1); t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
      const entry_t *e = &t->e[t->slots[k] - 1];
      if (e->hash == h && e->len == len && memcmp(t->arena + e->off, s, len) == 0) {
        *idx = t->slots[k] - 1;
        return 1;
      }
    }
  }
  if (!insert) return 0;
  if (2 * (t->n + 1) > t->nslots && !rehash(t, t->nslots ? 2 * t->nslots : 256)) return -1;
  if (!grow((void **)&t->e, &t->ecap, t->n + 1, sizeof *t->e) ||
      !grow((void **)&t->arena, &t->cap, t->used + len + 1, 1))
    return -1;
  memcpy(t->arena + t->used, s, len);
  t->arena[t->used + len] = '\0';
  t->e[t->n] = (entry_t){t->used, len, h, 0};
  t->used += len + 1;
  size_t k = (size_t)h & (t->nslots - 1);
  while (t->slots[k]) k = (k + 1) & (t->nslots - 1);
  t->slots[k] = t->n + 1;
  *idx = t->n++;
  return 1;
}

/* ---- Ordering the vocabulary and the classes ---- */

typedef struct {
  const char *s;
  size_t len;
  long count;
  size_t idx;
} ranked_t;

static int cmp_bytes(const ranked_t *a, const ranked_t *b) {
  int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
  if (c) return c;
  return (a->len > b->len) - (a->len < b->len);
}

static int by_count_then_bytes(const void *pa, const void *pb) {
  const ranked_t *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return cmp_bytes(a, b);
}

static int by_bytes(const void *pa, const void *pb) { return cmp_bytes(pa, pb); }

/* The entries seen in the training lines (count > 0), sorted by cmp; *k gets how many. */
static ranked_t *rank(const strtab_t *t, int (*cmp)(const void *, const void *), size_t *k) {
  ranked_t *r = malloc((t->n ? t->n : 1) * sizeof *r);
  if (!r) return NULL;
  *k = 0;
  for (size_t i = 0; i < t->n; i++)
    if (t->e[i].count > 0) r[(*k)++] = (ranked_t){strtab_str(t, i), t->e[i].len, t->e[i].count, i};
  qsort(r, *k, sizeof *r, cmp);
  return r;
}

/* ---- The loader ---- */

typedef struct {
  const char *path;
  dt_token_kind kind;
  long max_tokens, seq_len;
  bool build;        /* building the vocabulary (else reusing one) */
  strtab_t tokens;   /* building: every token seen; reusing: vocabulary ids 2.. */
  strtab_t labels;   /* building: every label seen; reusing: the class names */
  char *meta;        /* reusing: the training set's meta_json, copied */
  char *tokbuf;      /* one token */
  size_t tokcap;
} text_t;

static int nomem(const text_t *t, dt_error_t *err) {
  return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory", t->path);
}

/* Takes the vocabulary and classes of a loaded (training) text dataset. */
static int reuse_vocab(text_t *t, const dt_dataset_t *v, dt_error_t *err) {
  const char *vwhat = v->what ? v->what : "the training set";
  if (!v->meta_json || (v->num_classes > 0 && !v->class_names))
    return dt_error_set(err, DT_ERR_ARG, "'%s': cannot take the vocabulary of '%s': it is not a "
                        "text dataset", t->path, vwhat);
  size_t mlen = strlen(v->meta_json);
  char *wrapped = malloc(mlen + 3);
  if (!wrapped) return nomem(t, err);
  snprintf(wrapped, mlen + 3, "{%s}", v->meta_json);
  dt_json_t *j = NULL;
  int rc = dt_json_parse(wrapped, mlen + 2, vwhat, &j, err);
  free(wrapped);
  if (rc) return rc;
  const dt_json_t *kind = dt_json_get_typed(j, "tokens", DT_JSON_STRING);
  const dt_json_t *maxt = dt_json_get_typed(j, "max_tokens", DT_JSON_NUMBER);
  const dt_json_t *seq = dt_json_get_typed(j, "sequence_length", DT_JSON_NUMBER);
  const dt_json_t *voc = dt_json_get_typed(j, "vocabulary", DT_JSON_ARRAY);
  if (!kind || !maxt || !seq || !voc || voc->count < 2 || seq->number < 1 ||
      seq->number > INT32_MAX || maxt->number < 3 || maxt->number > INT32_MAX ||
      (strcmp(kind->string, "words") != 0 && strcmp(kind->string, "chars") != 0)) {
    dt_json_free(j);
    return dt_error_set(err, DT_ERR_ARG, "'%s': cannot take the vocabulary of '%s': its "
                        "metadata is not a text vocabulary", t->path, vwhat);
  }
  t->kind = strcmp(kind->string, "chars") == 0 ? DT_TOKENS_CHARS : DT_TOKENS_WORDS;
  t->max_tokens = (long)maxt->number;
  t->seq_len = (long)seq->number;
  int i = 0;
  for (const dt_json_t *s = voc->child; s && !rc; s = s->next, i++) {
    if (i < 2) continue; /* "" and "[UNK]": no token is ever either */
    size_t idx = 0;
    int found = s->type == DT_JSON_STRING ? strtab_find(&t->tokens, s->string, strlen(s->string),
                                                        false, &idx) : 1;
    if (found) {
      rc = dt_error_set(err, DT_ERR_ARG, "'%s': the vocabulary of '%s' has a bad or repeated "
                        "entry at id %d", t->path, vwhat, i);
    } else if (strtab_find(&t->tokens, s->string, strlen(s->string), true, &idx) < 0) {
      rc = nomem(t, err);
    }
  }
  dt_json_free(j);
  for (int c = 0; c < v->num_classes && !rc; c++) {
    size_t idx = 0;
    const char *name = v->class_names[c] ? v->class_names[c] : "";
    if (strtab_find(&t->labels, name, strlen(name), true, &idx) < 0) rc = nomem(t, err);
  }
  if (!rc && !(t->meta = strdup(v->meta_json))) rc = nomem(t, err);
  return rc;
}

/* Checks a line's bytes: valid UTF-8 without NUL. */
static int check_utf8(const text_t *t, size_t line, const char *p, const char *le,
                      dt_error_t *err) {
  const unsigned char *s = (const unsigned char *)p, *e = (const unsigned char *)le;
  uint32_t cp;
  for (const unsigned char *q = s; q < e;) {
    if (*q < 0x80) {
      if (*q == 0)
        return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: a NUL byte in a text file", t->path,
                            line, (size_t)(q - s) + 1);
      q++;
      continue;
    }
    size_t len = dt_utf8_decode(q, e, &cp);
    if (!len)
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: invalid UTF-8 (byte 0x%02X)", t->path,
                          line, (size_t)(q - s) + 1, *q);
    q += len;
  }
  return DT_OK;
}

/* The lines of [s, e) after empty lines at the very end are dropped: *e moves back. */
static size_t count_lines(const char *s, const char **e) {
  const char *end = *e;
  while (end > s && end[-1] == '\n') {
    /* The last line is empty when what precedes its line end is another line end (or
     * nothing); then it goes too. */
    const char *c = end - 1;
    if (c > s && c[-1] == '\r') c--;
    if (c == s || c[-1] == '\n') end = c;
    else {
      end = c;
      break;
    }
  }
  *e = end;
  if (end == s) return 0;
  size_t n = 1;
  for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) n++;
  return n;
}

/* Reads every line: labels into label_idx (n), the first seq_len token entries into ids
 * (n, seq_len; -1 past the end), counts for the first n_train lines. Reusing, ids are
 * final and label_idx holds class ids. */
static int read_lines(text_t *t, const char *s, const char *e, size_t n, size_t n_train,
                      int32_t *ids, int32_t *label_idx, dt_error_t *err) {
  const char *p = s;
  size_t L = (size_t)t->seq_len;
  for (size_t i = 0; i < n; i++) {
    size_t line = i + 1;
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    const char *le = nl ? nl : e, *next = nl ? nl + 1 : e;
    if (le > p && le[-1] == '\r') le--;
    int rc = check_utf8(t, line, p, le, err);
    if (rc) return rc;
    const char *tab = memchr(p, '\t', (size_t)(le - p));
    if (!tab)
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: %s (expected a label, a tab and a text)",
                          t->path, line, le == p ? "empty line" : "missing tab");
    if (tab == p)
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: empty label (before the tab)", t->path, line);
    if (tab + 1 == le)
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: empty text (after the tab)", t->path, line);

    size_t li = 0, llen = (size_t)(tab - p);
    int found = strtab_find(&t->labels, p, llen, t->build, &li);
    if (found < 0) return nomem(t, err);
    if (!found) {
      char names[600] = "";
      size_t w = 0;
      for (size_t c = 0; c < t->labels.n && w < sizeof names; c++)
        w += (size_t)snprintf(names + w, sizeof names - w, "%s'%s'", c ? ", " : "",
                              strtab_str(&t->labels, c));
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: label '%.*s' is not a class of the "
                          "training set (its classes: %s)", t->path, line, (int)llen, p, names);
    }
    if (t->build && i < n_train) t->labels.e[li].count++;
    label_idx[i] = (int32_t)li;

    size_t tlen = (size_t)(le - tab - 1);
    if (!grow((void **)&t->tokbuf, &t->tokcap, tlen + 1, 1)) return nomem(t, err);
    dt_tokenizer_t tk = {(const unsigned char *)tab + 1, (const unsigned char *)le,
                         t->kind == DT_TOKENS_CHARS};
    int32_t *row = ids + i * L;
    size_t k = 0, len;
    while ((len = dt_tokenizer_next(&tk, t->tokbuf)) > 0) {
      size_t ti = 0;
      if (t->build) {
        if (strtab_find(&t->tokens, t->tokbuf, len, true, &ti) < 0) return nomem(t, err);
        if (t->tokens.n > (size_t)INT32_MAX)
          return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: more than %d distinct tokens", t->path,
                              line, INT32_MAX);
        if (i < n_train) t->tokens.e[ti].count++;
        if (k < L) row[k++] = (int32_t)ti;
        continue;
      }
      if (k == L) break; /* reusing, the tokens past the sequence do not matter */
      row[k++] = strtab_find(&t->tokens, t->tokbuf, len, false, &ti) == 1 ? (int32_t)ti + 2 : 1;
    }
    for (; k < L; k++) row[k] = t->build ? -1 : 0;
    p = next;
  }
  return DT_OK;
}

/* Building: chooses the classes and the vocabulary, turns the interned indices of every
 * line into ids, and writes meta_json and the class names. */
static int finish_vocab(text_t *t, size_t n, size_t n_train, int32_t *ids, int32_t *labels,
                        char **meta, char ***class_block, int *num_classes, dt_error_t *err) {
  size_t nc = 0, nv = 0;
  ranked_t *classes = rank(&t->labels, by_bytes, &nc);
  ranked_t *vocab = classes ? rank(&t->tokens, by_count_then_bytes, &nv) : NULL;
  int32_t *map = vocab ? malloc((t->labels.n + t->tokens.n + 1) * sizeof *map) : NULL;
  int rc = DT_OK;
  if (!map) {
    rc = nomem(t, err);
    goto done;
  }
  if (nc > (size_t)INT32_MAX) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': too many classes (%zu)", t->path, nc);
    goto done;
  }
  /* Classes: a label of the held-out lines only has no id. */
  for (size_t i = 0; i < t->labels.n; i++) map[i] = -1;
  for (size_t c = 0; c < nc; c++) map[classes[c].idx] = (int32_t)c;
  for (size_t i = 0; i < n; i++) {
    int32_t c = map[labels[i]];
    if (c < 0) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: label '%s' is only in the validation part "
                        "(the last %zu lines), not in the training lines", t->path, i + 1,
                        strtab_str(&t->labels, (size_t)labels[i]), n - n_train);
      goto done;
    }
    labels[i] = c;
  }
  /* Vocabulary: the most frequent max_tokens - 2 tokens from id 2; the rest are [UNK]. */
  size_t keep = nv < (size_t)t->max_tokens - 2 ? nv : (size_t)t->max_tokens - 2;
  for (size_t i = 0; i < t->tokens.n; i++) map[i] = 1;
  for (size_t r = 0; r < keep; r++) map[vocab[r].idx] = (int32_t)(r + 2);
  size_t total = n * (size_t)t->seq_len;
  for (size_t i = 0; i < total; i++) ids[i] = ids[i] < 0 ? 0 : map[ids[i]];

  size_t need = 256;
  for (size_t r = 0; r < keep; r++) need += dt_json_quote(vocab[r].s, NULL, 0) + 2;
  size_t names_bytes = nc * sizeof(char *);
  for (size_t c = 0; c < nc; c++) names_bytes += classes[c].len + 1;
  char *m = malloc(need);
  char **names = malloc(names_bytes ? names_bytes : 1);
  if (!m || !names) {
    free(m);
    free(names);
    rc = nomem(t, err);
    goto done;
  }
  size_t w = (size_t)snprintf(m, need, "\"tokens\": \"%s\", \"max_tokens\": %ld, "
                              "\"sequence_length\": %ld, \"vocabulary\": [\"\", \"[UNK]\"",
                              t->kind == DT_TOKENS_CHARS ? "chars" : "words", t->max_tokens,
                              t->seq_len);
  for (size_t r = 0; r < keep; r++) {
    w += (size_t)snprintf(m + w, need - w, ", ");
    w += dt_json_quote(vocab[r].s, m + w, need - w);
  }
  snprintf(m + w, need - w, "]");
  /* The names' strings follow the array of pointers in the same block. */
  char *str = (char *)(names + nc);
  for (size_t c = 0; c < nc; c++) {
    names[c] = str;
    memcpy(str, classes[c].s, classes[c].len + 1);
    str += classes[c].len + 1;
  }
  *meta = m;
  *class_block = names;
  *num_classes = (int)nc;
done:
  free(classes);
  free(vocab);
  free(map);
  return rc;
}

/* Reusing: the class names of the training set, copied into one block. */
static int copy_classes(text_t *t, char ***class_block, int *num_classes, dt_error_t *err) {
  size_t nc = t->labels.n, bytes = nc * sizeof(char *) + t->labels.used;
  char **names = malloc(bytes ? bytes : 1);
  if (!names) return nomem(t, err);
  char *str = (char *)(names + nc);
  memcpy(str, t->labels.arena, t->labels.used);
  for (size_t c = 0; c < nc; c++) names[c] = str + t->labels.e[c].off;
  *class_block = names;
  *num_classes = (int)nc;
  return DT_OK;
}

int dt_text_load(const char *path, const dt_text_opts_t *o, dt_dataset_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  text_t t = {.path = path, .kind = o->tokens, .max_tokens = o->max_tokens,
              .seq_len = o->sequence_length, .build = o->vocab_from == NULL};
  dt_dataset_t ds = {0};
  char *buf = NULL, *meta = NULL, **names = NULL, *what = NULL;
  int32_t *ids = NULL, *labels = NULL;
  int num_classes = 0, rc = DT_OK;
  if (t.build) {
    if (t.max_tokens < 3 || t.max_tokens > INT32_MAX) {
      rc = dt_error_set(err, DT_ERR_ARG, "'%s': max_tokens must be from 3 (padding, [UNK] and "
                        "one token) to %d, not %ld", path, INT32_MAX, t.max_tokens);
      goto fail;
    }
    if (t.seq_len < 1 || t.seq_len > INT32_MAX) {
      rc = dt_error_set(err, DT_ERR_ARG, "'%s': sequence_length must be from 1 to %d, not %ld",
                        path, INT32_MAX, t.seq_len);
      goto fail;
    }
    if (t.kind != DT_TOKENS_WORDS && t.kind != DT_TOKENS_CHARS) {
      rc = dt_error_set(err, DT_ERR_ARG, "'%s': unknown token kind %d", path, (int)t.kind);
      goto fail;
    }
  } else if ((rc = reuse_vocab(&t, o->vocab_from, err))) {
    goto fail;
  }

  size_t len = 0, bom = 0;
  if ((rc = dt_textfile_read(path, &buf, &len, &bom, err))) goto fail;
  const char *s = buf + bom, *e = buf + len;
  size_t n = count_lines(s, &e);
  if (n == 0) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': no lines (expected a label, a tab and a text "
                      "on each line)", path);
    goto fail;
  }
  /* The held-out tail, rounded as dt_dataset_split rounds. */
  double f = o->holdout_fraction > 0.0 ? (o->holdout_fraction < 1.0 ? o->holdout_fraction : 1.0)
                                       : 0.0;
  size_t n_val = t.build ? (size_t)llround((double)n * f) : 0;
  if (n_val > n) n_val = n;
  size_t n_train = n - n_val, L = (size_t)t.seq_len;
  if (t.build && n_train == 0) {
    rc = dt_error_set(err, DT_ERR_ARG, "'%s': holdout_fraction %g leaves none of its %zu lines "
                      "to build the vocabulary from", path, o->holdout_fraction, n);
    goto fail;
  }
  if (n > SIZE_MAX / sizeof(int32_t) / L) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': %zu lines of %zu ids do not fit in memory", path,
                      n, L);
    goto fail;
  }
  ids = malloc(n * L * sizeof *ids);
  labels = malloc(n * sizeof *labels);
  if (!ids || !labels) {
    rc = nomem(&t, err);
    goto fail;
  }
  if ((rc = read_lines(&t, s, e, n, n_train, ids, labels, err))) goto fail;
  free(buf);
  buf = NULL;
  if (t.build)
    rc = finish_vocab(&t, n, n_train, ids, labels, &meta, &names, &num_classes, err);
  else if (!(rc = copy_classes(&t, &names, &num_classes, err)))
    meta = t.meta, t.meta = NULL;
  if (rc) goto fail;

  ds.n = n;
  ds.dim = L;
  ds.shape[0] = (int)L;
  ds.shape[1] = ds.shape[2] = 1;
  ds.ndim = 1;
  ds.integer_ids = true;
  ds.first_line = 1;
  ds.ykind = DT_Y_CLASSES;
  ds.num_classes = num_classes;
  ds.x = (dt_array_t){DT_I32, ids, L};
  ds.y = (dt_array_t){DT_I32, labels, 1};
  int32_t *own_ids = ids, *own_labels = labels;
  char *own_meta = meta, **own_names = names;
  ids = labels = NULL;
  meta = NULL;
  names = NULL;
  /* Each is owned (or freed by dt_data_own on failure) before the next is tried. */
  if ((rc = dt_data_own(&ds, own_ids, err))) {
    free(own_labels), free(own_meta), free(own_names);
    goto fail;
  }
  if ((rc = dt_data_own(&ds, own_labels, err))) {
    free(own_meta), free(own_names);
    goto fail;
  }
  if ((rc = dt_data_own(&ds, own_meta, err))) {
    free(own_names);
    goto fail;
  }
  ds.meta_json = own_meta;
  if ((rc = dt_data_own(&ds, own_names, err))) goto fail;
  ds.class_names = own_names;
  if (!(what = strdup(path))) {
    rc = nomem(&t, err);
    goto fail;
  }
  if ((rc = dt_data_own(&ds, what, err))) goto fail;
  ds.what = what;
  strtab_free(&t.tokens);
  strtab_free(&t.labels);
  free(t.tokbuf);
  *out = ds;
  return DT_OK;

fail:
  free(buf);
  free(ids);
  free(labels);
  free(meta);
  free(names);
  free(t.meta);
  free(t.tokbuf);
  strtab_free(&t.tokens);
  strtab_free(&t.labels);
  dt_dataset_free(&ds);
  return rc;
}
