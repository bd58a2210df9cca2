/* CSV files of numbers with a header row (see csv.h): the header, the choice of feature
 * and target columns by name, and the rows parsed in place from one read of the file.
 *
 * Speed matters here (a CSV of a million rows is an ordinary training set), so the rows
 * are parsed in one pass with a pointer, and most numbers take the exact fast paths of
 * csv_number.h instead of strtod. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/csv.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv_number.h"
#include "dtrain/json.h"
#include "textfile.h"

/* A cell's text shown in messages is cut to this many bytes. */
enum { SHOW_MAX = 40 };

typedef struct {
  const char *path;
  const char *end;  /* the end of the file's bytes (a NUL follows) */
  char **names;     /* (ncols) header names, unquoted */
  size_t ncols;
  int *dest;        /* (ncols) 0: skipped, j + 1: feature j, -(k + 1): target k */
  size_t *feat_col; /* (nfeat) the column of each feature, in the order listed */
  size_t *targ_col; /* (ntarg) */
  size_t nfeat, ntarg;
} csv_t;

static void csv_free(csv_t *c) {
  for (size_t i = 0; i < c->ncols; i++) free(c->names[i]);
  free(c->names);
  free(c->dest);
  free(c->feat_col);
  free(c->targ_col);
}

/* A line ends at LF, at CRLF, or at the end of the file (a CR just before the end too). */
static inline bool at_eol(const char *p, const char *end) {
  return p == end || *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
}

static inline bool at_delim(const char *p, const char *end) {
  return *p == ',' || at_eol(p, end);
}

static const char *skip_eol(const char *p, const char *end) {
  if (p < end && *p == '\r') p++;
  if (p < end && *p == '\n') p++;
  return p;
}

static inline const char *skip_blanks(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/* ---- The header ---- */

/* Reads one header name at *pp (quoted or not) into a malloc'd string; *line counts the
 * line breaks inside quotes. On return *pp is at the delimiter after the name. */
static int header_name(const csv_t *c, const char **pp, size_t *line, size_t col, char **name,
                       dt_error_t *err) {
  const char *p = skip_blanks(*pp), *end = c->end;
  if (*p == '"') {
    size_t start_line = *line, len = 0;
    const char *q = p + 1;
    for (;; q++) {
      if (q >= end)
        return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: the quoted name of column %zu has "
                            "no closing quote", c->path, start_line, col + 1, col + 1);
      if (*q == '"') {
        if (q[1] != '"') break;
        q++;
      } else if (*q == '\n') {
        (*line)++;
      }
      len++;
    }
    char *s = malloc(len + 1);
    if (!s) return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory for the header", c->path);
    size_t n = 0;
    for (const char *r = p + 1; r < q; r++) {
      s[n++] = *r;
      if (*r == '"') r++; /* "" stands for one quote */
    }
    s[n] = '\0';
    p = skip_blanks(q + 1);
    if (!at_delim(p, end)) {
      free(s);
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: text after the closing quote of "
                          "column %zu's name", c->path, *line, col + 1, col + 1);
    }
    *name = s;
    *pp = p;
    return DT_OK;
  }
  const char *q = p;
  while (!at_delim(q, end)) q++;
  const char *e = q;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
  if (!(*name = strndup(p, (size_t)(e - p))))
    return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory for the header", c->path);
  *pp = q;
  return DT_OK;
}

/* Reads the header row at *pp; on return *pp is at the first data row and *line is its
 * line number. */
static int read_header(csv_t *c, const char **pp, size_t *line, dt_error_t *err) {
  const char *p = *pp;
  if (p == c->end)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': empty file (expected a header row of column "
                        "names)", c->path);
  if (at_eol(p, c->end))
    return dt_error_set(err, DT_ERR_FORMAT, "%s:1: empty first line (expected a header row of "
                        "column names)", c->path);
  size_t cap = 0;
  for (;;) {
    if (c->ncols == cap) {
      cap = cap ? 2 * cap : 16;
      char **bigger = realloc(c->names, cap * sizeof *bigger);
      if (!bigger) return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory for the header", c->path);
      c->names = bigger;
    }
    char *name = NULL;
    int rc = header_name(c, &p, line, c->ncols, &name, err);
    if (rc) return rc;
    c->names[c->ncols++] = name;
    if (*p != ',') break;
    p++;
  }
  /* Names are matched by value, so one that appears twice could not be chosen. */
  for (size_t i = 0; i < c->ncols; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->names[i], c->names[j]) == 0)
        return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: column name '%s' appears twice "
                            "(columns %zu and %zu)", c->path, *line, i + 1, c->names[i], j + 1,
                            i + 1);
  *pp = skip_eol(p, c->end);
  (*line)++;
  return DT_OK;
}

/* ---- Choosing columns ---- */

/* The header's names, quoted and comma-separated, for messages (cut to fit). */
static void list_names(const csv_t *c, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < c->ncols && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s'%s'", i ? ", " : "", c->names[i]);
}

/* Parses a comma-separated list of names into column indices (malloc'd *cols, *count). */
static int choose(csv_t *c, const char *list, const char *what, size_t **cols, size_t *count,
                  dt_error_t *err) {
  *cols = NULL;
  *count = 0;
  if (!list) return DT_OK;
  const char *s = skip_blanks(list);
  if (!*s) return DT_OK;
  size_t cap = 1;
  for (const char *q = s; *q; q++) cap += *q == ',';
  if (!(*cols = malloc(cap * sizeof **cols)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the %s list", what);
  for (;;) {
    const char *b = skip_blanks(s), *e = b;
    while (*e && *e != ',') e++;
    const char *next = e;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
    size_t len = (size_t)(e - b);
    if (len == 0)
      return dt_error_set(err, DT_ERR_ARG, "'%s': an empty column name in the %s list '%s'",
                          c->path, what, list);
    size_t col = c->ncols;
    for (size_t i = 0; i < c->ncols; i++)
      if (strlen(c->names[i]) == len && memcmp(c->names[i], b, len) == 0) col = i;
    if (col == c->ncols) {
      char names[700];
      list_names(c, names, sizeof names);
      return dt_error_set(err, DT_ERR_ARG, "'%s': no column named '%.*s' (in %s); the header "
                          "(line 1) has: %s", c->path, (int)len, b, what, names);
    }
    for (size_t i = 0; i < *count; i++)
      if ((*cols)[i] == col)
        return dt_error_set(err, DT_ERR_ARG, "'%s': column '%s' is listed twice in %s", c->path,
                            c->names[col], what);
    (*cols)[(*count)++] = col;
    if (!*next) break;
    s = next + 1;
  }
  return DT_OK;
}

static int choose_columns(csv_t *c, const dt_csv_opts_t *o, dt_error_t *err) {
  int rc = choose(c, o ? o->targets : NULL, "targets", &c->targ_col, &c->ntarg, err);
  if (!rc) rc = choose(c, o ? o->features : NULL, "features", &c->feat_col, &c->nfeat, err);
  if (rc) return rc;
  if (!(c->dest = calloc(c->ncols, sizeof *c->dest)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the columns of '%s'", c->path);
  for (size_t k = 0; k < c->ntarg; k++) c->dest[c->targ_col[k]] = -(int)(k + 1);
  if (c->nfeat == 0) {
    /* Every column that is not a target, in file order. */
    free(c->feat_col);
    if (!(c->feat_col = malloc((c->ncols ? c->ncols : 1) * sizeof *c->feat_col)))
      return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the columns of '%s'", c->path);
    for (size_t i = 0; i < c->ncols; i++)
      if (c->dest[i] == 0) c->feat_col[c->nfeat++] = i;
  }
  for (size_t j = 0; j < c->nfeat; j++) {
    size_t col = c->feat_col[j];
    if (c->dest[col] < 0)
      return dt_error_set(err, DT_ERR_ARG, "'%s': column '%s' is listed both as a target and "
                          "as a feature", c->path, c->names[col]);
    c->dest[col] = (int)(j + 1);
  }
  if (c->nfeat == 0)
    return dt_error_set(err, DT_ERR_ARG, "'%s': no feature columns (every column is a target)",
                        c->path);
  if (c->nfeat > (size_t)INT32_MAX || c->ncols > (size_t)INT32_MAX)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': too many columns (%zu)", c->path, c->ncols);
  return DT_OK;
}

/* ---- Cells ---- */

typedef enum { CELL_OK, CELL_EMPTY, CELL_NOT_NUMBER, CELL_NOT_FINITE, CELL_FLOAT_RANGE } cell_status;

/* Parses the number in the cell at s; *next is the delimiter after it. */
static inline cell_status parse_cell(const char *s, const char *end, float *out,
                                     const char **next) {
  const char *p = skip_blanks(s);
  bool quoted = *p == '"';
  if (quoted) {
    p = skip_blanks(p + 1);
    if (*p == '"') { /* "" */
      const char *q = skip_blanks(p + 1);
      if (!at_delim(q, end)) return CELL_NOT_NUMBER;
      *next = q;
      return CELL_EMPTY;
    }
  } else if (at_delim(p, end)) {
    *next = p;
    return CELL_EMPTY;
  }
  /* strtod would skip any white space, line breaks included, and read on into the next
   * row: a cell must start with its number. */
  if ((unsigned char)*p <= ' ') return CELL_NOT_NUMBER;
  double v;
  const char *e;
  if (!dt_csv_fast_number(p, &e, &v)) {
    const char *h = p + (*p == '-' || *p == '+');
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) return CELL_NOT_NUMBER; /* as Python */
    char *ce;
    v = strtod(p, &ce);
    if (ce == p) return CELL_NOT_NUMBER;
    e = ce;
  }
  e = skip_blanks(e);
  if (quoted) {
    if (*e != '"') return CELL_NOT_NUMBER;
    e = skip_blanks(e + 1);
  }
  if (!at_delim(e, end)) return CELL_NOT_NUMBER;
  *next = e;
  if (!isfinite(v)) return CELL_NOT_FINITE;
  float f = (float)v;
  if (!isfinite(f)) return CELL_FLOAT_RANGE;
  *out = f;
  return CELL_OK;
}

/* Skips a cell of a column that is not used; returns NULL for a quoted cell that holds a
 * line break or has no closing quote (rows would no longer be lines). */
static const char *skip_cell(const char *s, const char *end) {
  const char *p = skip_blanks(s);
  if (*p != '"') {
    while (!at_delim(p, end)) p++;
    return p;
  }
  for (p++;; p++) {
    if (p >= end || *p == '\n') return NULL;
    if (*p == '"') {
      if (p[1] != '"') break;
      p++;
    }
  }
  p = skip_blanks(p + 1);
  return at_delim(p, end) ? p : NULL;
}

/* The error for cell col of a row at line; s is where the cell starts. */
static int cell_error(const csv_t *c, size_t line, size_t col, const char *s, cell_status why,
                      dt_error_t *err) {
  size_t len = 0;
  while (s + len < c->end && s[len] != ',' && s[len] != '\n' && s[len] != '\r') len++;
  const char *more = len > SHOW_MAX ? "..." : "";
  int show = len > SHOW_MAX ? SHOW_MAX : (int)len;
  const char *name = c->names[col];
  switch (why) {
    case CELL_EMPTY:
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: column '%s': empty cell", c->path,
                          line, col + 1, name);
    case CELL_NOT_FINITE:
    case CELL_FLOAT_RANGE:
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: column '%s': not a finite number: "
                          "'%.*s%s' (NaN, infinities and values beyond float32's range are not "
                          "allowed)", c->path, line, col + 1, name, show, s, more);
    default:
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: column '%s': not a number: '%.*s%s'",
                          c->path, line, col + 1, name, show, s, more);
  }
}

/* Parses the rows from p into x (rows_max, nfeat) and y (rows_max, ntarg); *rows gets the
 * count. */
static int read_rows(const csv_t *c, const char *p, size_t line, size_t rows_max, float *x,
                     float *y, size_t *rows, dt_error_t *err) {
  const char *end = c->end;
  const int *dest = c->dest;
  size_t row = 0, ncols = c->ncols, nfeat = c->nfeat, ntarg = c->ntarg;
  while (p < end) {
    if (at_eol(p, end)) {
      /* Empty lines may only close the file: a row dropped in the middle would shift the
       * line numbers of every later row. */
      const char *q = p;
      while (q < end && (*q == '\n' || *q == '\r')) q++;
      if (q == end) break;
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: empty line (every row needs %zu "
                          "fields)", c->path, line, ncols);
    }
    if (row == rows_max) /* cannot happen: rows_max counts the line ends */
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu: more rows than lines", c->path, line);
    float *xr = x + row * nfeat, *yr = y ? y + row * ntarg : NULL;
    for (size_t col = 0; col < ncols; col++) {
      if (col > 0) {
        if (*p != ',')
          return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: too few fields: %zu of %zu "
                              "(column '%s' is missing)", c->path, line, col + 1, col, ncols,
                              c->names[col]);
        p++;
      }
      int d = dest[col];
      if (d == 0) {
        const char *q = skip_cell(p, end);
        if (!q)
          return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: column '%s': a quoted cell "
                              "without its closing quote on the same line", c->path, line,
                              col + 1, c->names[col]);
        p = q;
        continue;
      }
      float f = 0.0f;
      const char *q = NULL;
      cell_status st = parse_cell(p, end, &f, &q);
      if (st != CELL_OK) return cell_error(c, line, col, p, st, err);
      if (d > 0) xr[d - 1] = f;
      else yr[-d - 1] = f;
      p = q;
    }
    if (*p == ',' && p < end)
      return dt_error_set(err, DT_ERR_FORMAT, "%s:%zu:%zu: too many fields: the header has %zu "
                          "columns", c->path, line, ncols + 1, ncols);
    p = skip_eol(p, end);
    row++;
    line++;
  }
  *rows = row;
  return DT_OK;
}

/* `"features": [...], "targets": [...]` (malloc'd). */
static char *make_meta(const csv_t *c) {
  size_t need = 64;
  for (size_t i = 0; i < c->nfeat; i++) need += dt_json_quote(c->names[c->feat_col[i]], NULL, 0) + 2;
  for (size_t i = 0; i < c->ntarg; i++) need += dt_json_quote(c->names[c->targ_col[i]], NULL, 0) + 2;
  char *s = malloc(need);
  if (!s) return NULL;
  size_t n = (size_t)snprintf(s, need, "\"features\": [");
  for (size_t i = 0; i < c->nfeat; i++) {
    if (i) n += (size_t)snprintf(s + n, need - n, ", ");
    n += dt_json_quote(c->names[c->feat_col[i]], s + n, need - n);
  }
  n += (size_t)snprintf(s + n, need - n, "], \"targets\": [");
  for (size_t i = 0; i < c->ntarg; i++) {
    if (i) n += (size_t)snprintf(s + n, need - n, ", ");
    n += dt_json_quote(c->names[c->targ_col[i]], s + n, need - n);
  }
  snprintf(s + n, need - n, "]");
  return s;
}

int dt_csv_load(const char *path, const dt_csv_opts_t *o, dt_dataset_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  char *buf = NULL;
  size_t len = 0, bom = 0;
  int rc = dt_textfile_read(path, &buf, &len, &bom, err);
  if (rc) return rc;
  csv_t c = {.path = path, .end = buf + len};
  dt_dataset_t ds = {0};
  float *x = NULL, *y = NULL;
  const char *p = buf + bom;
  size_t line = 1;
  if ((rc = read_header(&c, &p, &line, err)) || (rc = choose_columns(&c, o, err))) goto fail;

  /* Every row ends a line, so the line ends left (plus a last line without one) bound the
   * rows: the arrays are allocated once. */
  size_t rows_max = 1;
  for (const char *q = p; (q = memchr(q, '\n', (size_t)(c.end - q))) != NULL; q++) rows_max++;
  if (rows_max > SIZE_MAX / sizeof(float) / c.nfeat ||
      (c.ntarg && rows_max > SIZE_MAX / sizeof(float) / c.ntarg)) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': too many rows (%zu)", path, rows_max);
    goto fail;
  }
  x = malloc(rows_max * c.nfeat * sizeof *x);
  y = c.ntarg ? malloc(rows_max * c.ntarg * sizeof *y) : NULL;
  if (!x || (c.ntarg && !y)) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory for %zu rows of %zu columns", path,
                      rows_max, c.ncols);
    goto fail;
  }
  size_t first_line = line, rows = 0;
  if ((rc = read_rows(&c, p, line, rows_max, x, y, &rows, err))) goto fail;
  if (rows == 0) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': no data rows after the header (line %zu)",
                      path, first_line - 1);
    goto fail;
  }
  free(buf);
  buf = NULL;

  ds.n = rows;
  ds.dim = c.nfeat;
  ds.shape[0] = (int)c.nfeat;
  ds.shape[1] = ds.shape[2] = 1;
  ds.ndim = 1;
  ds.x = (dt_array_t){DT_F32, x, c.nfeat};
  ds.ykind = c.ntarg ? DT_Y_VALUES : DT_Y_NONE;
  ds.y = (dt_array_t){DT_F32, y, c.ntarg};
  ds.first_line = first_line;
  float *xs = x, *ys = y;
  x = y = NULL; /* from here the owner frees them */
  char *what = NULL, *meta = NULL;
  if ((rc = dt_data_own(&ds, xs, err)) || (ys && (rc = dt_data_own(&ds, ys, err)))) goto fail;
  if (!(what = strdup(path)) || (rc = dt_data_own(&ds, what, err))) {
    if (!rc) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  ds.what = what;
  if (!(meta = make_meta(&c)) || (rc = dt_data_own(&ds, meta, err))) {
    if (!rc) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  ds.meta_json = meta;
  csv_free(&c);
  *out = ds;
  return DT_OK;

fail:
  free(x);
  free(y);
  free(buf);
  csv_free(&c);
  dt_dataset_free(&ds);
  return rc;
}
