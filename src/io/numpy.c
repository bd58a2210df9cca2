/* NumPy's .npy files and .npz archives as datasets (see numpy.h).
 *
 * A .npy is a magic string, a version, a Python dict literal giving the dtype, the
 * order and the shape, then the raw values. The file is mapped, not read: the dataset
 * points into the map, so a file larger than memory trains, paged in as batches touch
 * it. An .npz is a zip of .npy files (zip.c); a stored entry is used in place in the
 * archive's map, a deflated one is inflated into memory.
 *
 * The checks are strict, as for IDX: a header that does not say exactly what the file
 * holds is an error naming the file, because training on a misread array is worse than
 * stopping. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/numpy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "finite.h"
#include "dtrain/zip.h"

/* The most dimensions an array may have: the samples plus a sample's shape. */
enum { NPY_MAX_NDIM = DT_DATA_MAX_DIMS + 1 };
/* Dimensions parsed from a header, to name a shape with too many in the error. */
enum { NPY_PARSE_DIMS = 32 };

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

typedef struct {
  dt_dtype_t type;
  char descr[32];
  int ndim;
  uint64_t shape[NPY_PARSE_DIMS];
  size_t data_off;
} npy_header_t;

/* ---- the header's dict literal ------------------------------------------------------ */

typedef struct {
  const char *where; /* "'x.npy'" or "'x.npz', entry 'a.npy'" */
  const char *p, *end;
  size_t base; /* the file offset of the text's first byte, for messages */
  const char *start;
} cursor_t;

static void skip_space(cursor_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* An error at the cursor: what was expected, and up to 24 bytes of what is there. */
static int bad_header(cursor_t *c, const char *expected, dt_error_t *err) {
  char got[32];
  size_t n = 0;
  for (const char *q = c->p; q < c->end && n < 24; q++)
    got[n++] = *q >= 0x20 && *q < 0x7f ? *q : '?';
  got[n] = '\0';
  return dt_error_set(err, DT_ERR_FORMAT, "%s: bad .npy header at byte %zu: expected %s, got "
                      "%s%s%s", c->where, c->base + (size_t)(c->p - c->start), expected,
                      n ? "'" : "the end of the header", got, n ? "'" : "");
}

static bool eat(cursor_t *c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

/* A Python string literal without escapes (all a dtype or key needs), into buf. */
static int parse_string(cursor_t *c, char *buf, size_t len, dt_error_t *err) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad_header(c, "a string", err);
  char quote = *c->p;
  const char *s = c->p + 1, *q = s;
  while (q < c->end && *q != quote && *q != '\\') q++;
  if (q >= c->end || *q != quote || (size_t)(q - s) >= len)
    return bad_header(c, "a short string without escapes", err);
  memcpy(buf, s, (size_t)(q - s));
  buf[q - s] = '\0';
  c->p = q + 1;
  return DT_OK;
}

static int parse_bool(cursor_t *c, bool *v, dt_error_t *err) {
  skip_space(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    c->p += 4;
    *v = true;
  } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    c->p += 5;
    *v = false;
  } else {
    return bad_header(c, "True or False", err);
  }
  return DT_OK;
}

/* A tuple of non-negative integers: "()", "(5,)", "(2, 3)"; Python 2's "3L" too. */
static int parse_shape(cursor_t *c, npy_header_t *h, dt_error_t *err) {
  if (!eat(c, '(')) return bad_header(c, "a tuple '(' for the shape", err);
  h->ndim = 0;
  for (;;) {
    if (eat(c, ')')) break;
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
      return bad_header(c, "a dimension (a non-negative integer)", err);
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      unsigned d = (unsigned)(*c->p - '0');
      if (v > (UINT64_MAX - d) / 10) return bad_header(c, "a dimension below 2^64", err);
      v = v * 10 + d;
      c->p++;
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    if (h->ndim == NPY_PARSE_DIMS) return bad_header(c, "at most 32 dimensions", err);
    h->shape[h->ndim++] = v;
    if (eat(c, ',')) continue;
    if (eat(c, ')')) break;
    return bad_header(c, "',' or ')' in the shape", err);
  }
  /* Python writes a one-element tuple as "(5,)"; "(5)" would be an int, not a tuple,
   * but nothing is gained by refusing it. */
  return DT_OK;
}

/* "(2, 3)" or "(5,)" as Python prints a shape. */
static void shape_text(const npy_header_t *h, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < h->ndim && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%llu", i ? ", " : "",
                             (unsigned long long)h->shape[i]);
  if (used < len) snprintf(buf + used, len - used, h->ndim == 1 ? ",)" : ")");
}

/* The kinds of dtype people save most often but we do not take, by NumPy's kind letter. */
static const char *dtype_kind(char k) {
  switch (k) {
    case 'c': return "complex";
    case 'U': return "unicode strings";
    case 'S': return "byte strings";
    case 'b': return "bool";
    case 'O': return "Python objects";
    case 'u': return "unsigned integers wider than 8 bits";
    case 'f': return "float16 or another float width";
    case 'M': return "datetimes";
    case 'm': return "timedeltas";
    case 'V': return "raw bytes or records";
    default: return "unknown";
  }
}

static int parse_descr(cursor_t *c, npy_header_t *h, dt_error_t *err) {
  skip_space(c);
  if (c->p < c->end && *c->p == '[')
    return dt_error_set(err, DT_ERR_FORMAT, "%s: unsupported dtype: a structured array (a list "
                        "of named fields); save each field as its own array", c->where);
  int rc = parse_string(c, h->descr, sizeof h->descr, err);
  if (rc) return rc;
  static const struct {
    const char *descr;
    dt_dtype_t type;
  } known[] = {{"|u1", DT_U8}, {"|i1", DT_I8}, {"<i2", DT_I16}, {"<i4", DT_I32},
               {"<i8", DT_I64}, {"<f4", DT_F32}, {"<f8", DT_F64}};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (strcmp(h->descr, known[i].descr) == 0) {
      h->type = known[i].type;
      return DT_OK;
    }
  if (h->descr[0] == '>')
    return dt_error_set(err, DT_ERR_FORMAT, "%s: big-endian dtype '%s' is not supported; save "
                        "the array little-endian (a.astype('<%s'))", c->where, h->descr,
                        h->descr + 1);
  const char *kind = h->descr[0] == '<' || h->descr[0] == '|' || h->descr[0] == '='
                         ? dtype_kind(h->descr[1])
                         : "unknown";
  return dt_error_set(err, DT_ERR_FORMAT, "%s: unsupported dtype '%s' (%s); supported: |u1 "
                      "|i1 <i2 <i4 <i8 <f4 <f8 (uint8, int8, int16, int32, int64, float32, "
                      "float64)", c->where, h->descr, kind);
}

/* The dict: {'descr': ..., 'fortran_order': ..., 'shape': ...}, each key once. */
static int parse_dict(cursor_t *c, npy_header_t *h, dt_error_t *err) {
  bool seen[3] = {false, false, false}, fortran = false;
  int rc;
  if (!eat(c, '{')) return bad_header(c, "'{' (a dict)", err);
  for (;;) {
    if (eat(c, '}')) break;
    char key[32];
    const char *key_at = c->p;
    if ((rc = parse_string(c, key, sizeof key, err))) return rc;
    if (!eat(c, ':')) return bad_header(c, "':' after a key", err);
    int k = strcmp(key, "descr") == 0 ? 0 : strcmp(key, "fortran_order") == 0 ? 1
            : strcmp(key, "shape") == 0 ? 2 : -1;
    if (k < 0 || seen[k]) {
      c->p = key_at;
      return bad_header(c, k < 0 ? "'descr', 'fortran_order' or 'shape'" : "each key once", err);
    }
    seen[k] = true;
    if (k == 0) rc = parse_descr(c, h, err);
    else if (k == 1) rc = parse_bool(c, &fortran, err);
    else rc = parse_shape(c, h, err);
    if (rc) return rc;
    if (eat(c, ',')) continue;
    if (eat(c, '}')) break;
    return bad_header(c, "',' or '}'", err);
  }
  skip_space(c);
  if (c->p != c->end) return bad_header(c, "only spaces after the dict", err);
  static const char *const names[3] = {"descr", "fortran_order", "shape"};
  for (int k = 0; k < 3; k++)
    if (!seen[k])
      return dt_error_set(err, DT_ERR_FORMAT, "%s: bad .npy header: no '%s' key", c->where,
                          names[k]);
  if (fortran)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: the array is in Fortran order (fortran_order "
                        "True); save it in C order (np.ascontiguousarray(a))", c->where);
  return DT_OK;
}

/* ---- the .npy layout ----------------------------------------------------------------- */

/* Parses the header of the .npy in (b, len) and checks that the data that follows is
 * exactly what it describes. */
static int parse_npy(const char *where, const unsigned char *b, size_t len, npy_header_t *h,
                     dt_error_t *err) {
  memset(h, 0, sizeof *h);
  if (len < 10 || memcmp(b, NPY_MAGIC, sizeof NPY_MAGIC) != 0) {
    if (len >= sizeof NPY_MAGIC && memcmp(b, NPY_MAGIC, sizeof NPY_MAGIC) == 0)
      return dt_error_set(err, DT_ERR_FORMAT, "%s: truncated: expected at least 10 header "
                          "bytes, got %zu", where, len);
    char got[32] = "";
    for (size_t i = 0; i < len && i < 6; i++)
      snprintf(got + 4 * i, sizeof got - 4 * i, "\\x%02x", b[i]);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: not a .npy file: expected the magic "
                        "\\x93NUMPY, got %s%s", where, len ? "" : "an empty file", got);
  }
  unsigned major = b[6], minor = b[7];
  size_t start, hlen;
  if (major == 1 && minor == 0) {
    start = 10;
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
  } else if ((major == 2 || major == 3) && minor == 0) {
    if (len < 12)
      return dt_error_set(err, DT_ERR_FORMAT, "%s: truncated: expected at least 12 header bytes "
                          "(format %u.0), got %zu", where, major, len);
    start = 12;
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
  } else {
    return dt_error_set(err, DT_ERR_FORMAT, "%s: .npy format version %u.%u is not supported "
                        "(1.0, 2.0 and 3.0 are)", where, major, minor);
  }
  if (hlen > len - start)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: truncated: expected a %zu-byte header after the "
                        "first %zu bytes, got %zu bytes", where, hlen, start, len - start);
  cursor_t c = {where, (const char *)b + start, (const char *)b + start + hlen, start,
                (const char *)b + start};
  int rc = parse_dict(&c, h, err);
  if (rc) return rc;
  h->data_off = start + hlen;

  char shape[160];
  shape_text(h, shape, sizeof shape);
  if (h->ndim == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: a 0-d array (shape ()) has no samples; dimension "
                        "0 counts the samples", where);
  if (h->ndim > NPY_MAX_NDIM)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: shape %s has %d dimensions; at most %d are "
                        "supported (the samples, then up to %d per sample)", where, shape,
                        h->ndim, NPY_MAX_NDIM, DT_DATA_MAX_DIMS);
  for (int i = 1; i < h->ndim; i++)
    if (h->shape[i] == 0 || h->shape[i] > INT_MAX)
      return dt_error_set(err, DT_ERR_FORMAT, "%s: shape %s: dimension %d (%llu) must be between 1 "
                          "and %d", where, shape, i, (unsigned long long)h->shape[i], INT_MAX);
  if (h->shape[0] > UINT32_MAX)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: shape %s: more than 2^32 samples are not "
                        "supported", where, shape);
  /* The data's size, computed without overflow (three dimensions below 2^31 and the
   * sample count can pass 2^64 together); an overflow is a header describing more
   * than any file holds. */
  uint64_t bytes = dt_dtype_size(h->type);
  bool overflow = false;
  /* The sample count last, so that a sample too large to address is an error even when
   * there are no samples. */
  for (int i = h->ndim - 1; i >= 0; i--)
    overflow |= __builtin_mul_overflow(bytes, h->shape[i], &bytes);
  uint64_t avail = len - h->data_off;
  if (overflow || bytes > avail) {
    char need[32] = "more than 2^64";
    if (!overflow) snprintf(need, sizeof need, "%llu", (unsigned long long)bytes);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: truncated: expected %s data bytes (shape %s of "
                        "%s) after the %zu-byte header, got %llu", where, need, shape, h->descr,
                        h->data_off, (unsigned long long)avail);
  }
  if (bytes < avail)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: %llu unexpected bytes after the data (shape %s "
                        "of %s is %llu bytes after the %zu-byte header)", where,
                        (unsigned long long)(avail - bytes), shape, h->descr,
                        (unsigned long long)bytes, h->data_off);
  return DT_OK;
}

/* Fills out from a parsed array at data, whose storage out's owner already holds, and
 * checks float values. */
static int fill(dt_dataset_t *out, const npy_header_t *h, const unsigned char *data,
                const char *where, dt_error_t *err) {
  out->n = (size_t)h->shape[0];
  if (h->ndim == 1) {
    out->ndim = 1;
    out->shape[0] = 1;
  } else {
    out->ndim = h->ndim - 1;
    for (int i = 1; i < h->ndim; i++) out->shape[i - 1] = (int)h->shape[i];
  }
  out->dim = 1;
  for (int i = 0; i < out->ndim; i++) out->dim *= (size_t)out->shape[i];
  out->x = (dt_array_t){h->type, data, out->dim};
  out->ykind = DT_Y_NONE;
  return dt_io_check_finite(where, h->type, data, out->n, out->dim, out->shape, out->ndim, err);
}

/* ---- files ----------------------------------------------------------------------------- */

/* Maps all of path read-only; an empty file maps nothing (*addr NULL). */
static int map_file(const char *path, unsigned char **addr, size_t *len, dt_error_t *err) {
  *addr = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return dt_error_set(err, errno == ENOENT ? DT_ERR_NOT_FOUND : DT_ERR_IO, "cannot open '%s': "
                        "%s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    close(fd);
    return dt_error_set(err, DT_ERR_IO, "'%s': %s", path,
                        S_ISREG(st.st_mode) ? strerror(e) : "not a regular file");
  }
  if (st.st_size > 0) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      return dt_error_set(err, e == ENOMEM ? DT_ERR_NOMEM : DT_ERR_IO, "'%s': cannot map its %lld "
                          "bytes: %s", path, (long long)st.st_size, strerror(e));
    }
    *addr = p;
    *len = (size_t)st.st_size;
  }
  close(fd);
  return DT_OK;
}

/* Checks a mapped array's floats in one sequential pass, telling the kernel to read
 * ahead and drop what it has read (the file may be larger than memory). */
static int check_mapped(dt_dataset_t *out, void *map, size_t map_len, const char *where,
                        const npy_header_t *h, const unsigned char *data, dt_error_t *err) {
  bool is_float = h->type == DT_F32 || h->type == DT_F64;
  if (is_float && map_len) posix_madvise(map, map_len, POSIX_MADV_SEQUENTIAL);
  int rc = fill(out, h, data, where, err);
  if (is_float && map_len) posix_madvise(map, map_len, POSIX_MADV_NORMAL);
  return rc;
}

/* Names of the arrays in an archive (its *.npy entries), for messages, and the entry
 * looked for. */
typedef struct {
  const char *want; /* "NAME.npy", or NULL to only list */
  size_t want_len;
  dt_zip_entry_t found;
  int matches;
  char names[512];
  size_t used, count;
} lookup_t;

static int visit(void *arg, const dt_zip_entry_t *e) {
  lookup_t *l = arg;
  if (l->want && e->name_len == l->want_len && memcmp(e->name, l->want, l->want_len) == 0) {
    l->found = *e;
    l->matches++;
  }
  if (e->name_len > 4 && memcmp(e->name + e->name_len - 4, ".npy", 4) == 0) {
    char name[128];
    dt_zip_name(e, name, sizeof name);
    name[e->name_len - 4 < sizeof name - 1 ? e->name_len - 4 : sizeof name - 1] = '\0';
    size_t room = sizeof l->names - l->used;
    if (room > 8) {
      int w = snprintf(l->names + l->used, room, "%s'%s'", l->count ? ", " : "", name);
      if (w > 0 && (size_t)w < room) l->used += (size_t)w;
      else {
        snprintf(l->names + l->used, room, ", ...");
        l->used = sizeof l->names;
      }
    }
    l->count++;
  }
  return 0;
}

/* The arrays an archive has, as "'a', 'b'" (or a note that it has none), into l. */
static const char *array_list(lookup_t *l) {
  return l->count ? l->names : "no arrays";
}

static int npz_without_name(const char *path, const unsigned char *map, size_t len,
                            dt_error_t *err) {
  lookup_t l;
  memset(&l, 0, sizeof l);
  int rc = dt_zip_each(path, map, len, visit, &l, err);
  if (rc) return rc;
  return dt_error_set(err, DT_ERR_ARG, "'%s' is an .npz archive: name one of its arrays as "
                      "'%s:NAME' (it has %s)", path, path, array_list(&l));
}

static int own_spec(dt_dataset_t *out, const char *spec, dt_error_t *err) {
  char *what = strdup(spec);
  if (!what) return dt_error_set(err, DT_ERR_NOMEM, "out of memory copying '%s'", spec);
  out->what = what;
  return dt_data_own(out, what, err);
}

static int load_npy(const char *path, dt_dataset_t *out, dt_error_t *err) {
  unsigned char *map;
  size_t len;
  int rc = map_file(path, &map, &len, err);
  if (rc) return rc;
  char where[PATH_MAX + 8];
  snprintf(where, sizeof where, "'%s'", path);
  npy_header_t h;
  if (len >= 4 && memcmp(map, "PK", 2) == 0 && (map[2] == 3 || map[2] == 5))
    rc = npz_without_name(path, map, len, err);
  else
    rc = parse_npy(where, map, len, &h, err);
  if (rc) {
    if (map) munmap(map, len);
    return rc;
  }
  if ((rc = dt_data_own_map(out, map, len, err))) return rc;
  return check_mapped(out, map, len, where, &h, map + h.data_off, err);
}

static int load_npz(const char *path, const char *name, dt_dataset_t *out, dt_error_t *err) {
  if (!*name)
    return dt_error_set(err, DT_ERR_ARG, "'%s:': name the array after the ':'", path);
  unsigned char *map;
  size_t len;
  int rc = map_file(path, &map, &len, err);
  if (rc) return rc;
  lookup_t l;
  memset(&l, 0, sizeof l);
  size_t name_len = strlen(name);
  char *want = malloc(name_len + 5);
  if (!want) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    goto fail;
  }
  snprintf(want, name_len + 5, "%s.npy", name);
  l.want = want;
  l.want_len = name_len + 4;
  rc = dt_zip_each(path, map, len, visit, &l, err);
  if (!rc && l.matches == 0)
    rc = dt_error_set(err, DT_ERR_NOT_FOUND, "'%s' has no array '%s' (no entry '%s'; it has %s)",
                      path, name, want, array_list(&l));
  if (!rc && l.matches > 1)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': the entry '%s' appears %d times", path, want,
                      l.matches);
  if (rc) goto fail;

  const unsigned char *bytes;
  unsigned char *owned;
  if ((rc = dt_zip_extract(path, map, len, &l.found, &bytes, &owned, err))) goto fail;
  char where[PATH_MAX + 160];
  char entry[128];
  dt_zip_name(&l.found, entry, sizeof entry);
  snprintf(where, sizeof where, "'%s', entry '%s'", path, entry);
  npy_header_t h;
  if ((rc = parse_npy(where, bytes, (size_t)l.found.usize, &h, err))) {
    free(owned);
    goto fail;
  }
  free(want);
  if (owned) {
    /* Inflated: the archive is no longer needed. */
    munmap(map, len);
    if ((rc = dt_data_own(out, owned, err))) return rc;
    return fill(out, &h, owned + h.data_off, where, err);
  }
  if ((rc = dt_data_own_map(out, map, len, err))) return rc;
  return check_mapped(out, map, len, where, &h, bytes + h.data_off, err);

fail:
  free(want);
  if (map) munmap(map, len);
  return rc;
}

int dt_numpy_load(const char *spec, dt_dataset_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  /* "PATH.npz:NAME": the last ".npz:" splits, so that a path may hold colons. */
  const char *split = NULL;
  for (const char *s = strstr(spec, ".npz:"); s; s = strstr(s + 1, ".npz:")) split = s;
  int rc;
  if (split) {
    size_t plen = (size_t)(split - spec) + 4;
    char *path = malloc(plen + 1);
    if (!path) return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    memcpy(path, spec, plen);
    path[plen] = '\0';
    rc = load_npz(path, split + 5, out, err);
    free(path);
  } else {
    rc = load_npy(spec, out, err);
  }
  if (!rc) rc = own_spec(out, spec, err);
  if (rc) dt_dataset_free(out);
  return rc;
}
