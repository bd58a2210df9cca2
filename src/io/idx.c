/* IDX files (plain or gzip): the header, the strict reader, datasets of any element
 * type and rank (dt_idx_load), and the unsigned-byte images-and-labels pair.
 *
 * The reader is strict: a file that is shorter, longer, or differently shaped than
 * its header says is an error naming the file, because training silently on half a
 * dataset (or on a labels file read as images) is worse than stopping. */
#define _POSIX_C_SOURCE 200809L

#include "dtrain/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "finite.h"

/* IDX element type codes (the third byte of the magic number). */
enum {
  IDX_TYPE_U8 = 0x08,
  IDX_TYPE_I8 = 0x09,
  IDX_TYPE_I16 = 0x0B,
  IDX_TYPE_I32 = 0x0C,
  IDX_TYPE_F32 = 0x0D,
  IDX_TYPE_F64 = 0x0E
};

/* An element type code as a dtype; false for codes IDX does not define. */
static bool idx_dtype(unsigned code, dt_dtype_t *t) {
  switch (code) {
    case IDX_TYPE_U8: *t = DT_U8; return true;
    case IDX_TYPE_I8: *t = DT_I8; return true;
    case IDX_TYPE_I16: *t = DT_I16; return true;
    case IDX_TYPE_I32: *t = DT_I32; return true;
    case IDX_TYPE_F32: *t = DT_F32; return true;
    case IDX_TYPE_F64: *t = DT_F64; return true;
    default: return false;
  }
}

/* What a header says: the element type, the dimensions, the payload's size. */
typedef struct {
  dt_dtype_t type;
  int ndims;
  uint32_t dims[255];
  uint64_t total; /* payload bytes */
} idx_header_t;

/* The largest payload we agree to allocate. A corrupt or hostile header can claim
 * dimensions whose product is astronomically large (or overflows); refusing anything
 * above 16 GiB turns that into a clear format error instead of a failed or, worse,
 * successful giant malloc. */
#define IDX_MAX_BYTES ((uint64_t)1 << 34)

/* A payload is read into a buffer of this size first, doubled as the data keeps coming,
 * so that what is allocated follows what the file holds, not what its header claims. */
#define READ_START_BYTES ((size_t)1 << 20)

/* gzread takes and returns int-sized counts, so large reads go in pieces of this size. */
#define GZ_CHUNK ((size_t)1 << 30)

/* zlib prefixes its messages with the path it was given, which for gzdopen is "<fd:N>";
 * our messages name the real file themselves, so that prefix is dropped. */
static const char *zlib_message(gzFile gz, int *errnum) {
  const char *msg = gzerror(gz, errnum);
  if (!msg) return "unknown zlib error";
  if (strncmp(msg, "<fd:", 4) == 0) {
    const char *rest = strstr(msg, ">: ");
    if (rest) return rest + 3;
  }
  return msg;
}

/* Turns a failed gzread (which returned -1) into an error: an operating-system read
 * error is I/O, anything else means the compressed stream itself is damaged. */
static int read_failure(gzFile gz, const char *path, dt_error_t *err) {
  int errnum = Z_OK;
  const char *msg = zlib_message(gz, &errnum);
  if (errnum == Z_ERRNO)
    return dt_error_set(err, DT_ERR_IO, "'%s': read failed: %s", path, strerror(errno));
  if (errnum == Z_MEM_ERROR)
    return dt_error_set(err, DT_ERR_NOMEM, "'%s': out of memory while decompressing", path);
  return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt gzip stream: %s", path, msg);
}

/* Reads up to len bytes, looping because gzread returns short counts only at the end
 * of the data. *got receives the number actually read; a short count with a return of
 * 0 means end of file (clean or not: see gz_ended_early). */
static int read_fully(gzFile gz, const char *path, uint8_t *buf, size_t len, size_t *got,
                      dt_error_t *err) {
  *got = 0;
  while (*got < len) {
    size_t want = len - *got;
    if (want > GZ_CHUNK) want = GZ_CHUNK;
    int n = gzread(gz, buf + *got, (unsigned)want);
    if (n < 0) return read_failure(gz, path, err);
    if (n == 0) break;
    *got += (size_t)n;
  }
  return DT_OK;
}

/* zlib does not report a gzip stream that stops mid-way as a read error: gzread just
 * returns fewer bytes and records Z_BUF_ERROR ("unexpected end of file"). Detecting it
 * lets a truncation message say that the compressed file itself was cut off. */
static const char *gz_ended_early(gzFile gz) {
  int errnum = Z_OK;
  const char *msg = zlib_message(gz, &errnum);
  return errnum == Z_BUF_ERROR ? msg : NULL;
}

static int truncated(gzFile gz, const char *path, const char *what, uint64_t expected,
                     size_t got, dt_error_t *err) {
  const char *early = gz_ended_early(gz);
  if (early)
    return dt_error_set(err, DT_ERR_FORMAT,
                        "'%s': truncated: expected %llu %s, got %zu (gzip stream: %s)", path,
                        (unsigned long long)expected, what, got, early);
  return dt_error_set(err, DT_ERR_FORMAT, "'%s': truncated: expected %llu %s, got %zu", path,
                      (unsigned long long)expected, what, got);
}

/* Counts what is left in the stream after the declared data. Any byte there means the
 * header and the file disagree (for instance a file concatenated with another). */
static int check_no_trailing(gzFile gz, const char *path, dt_error_t *err) {
  uint8_t buf[4096];
  unsigned long long extra = 0;
  for (;;) {
    int n = gzread(gz, buf, sizeof buf);
    if (n < 0) return read_failure(gz, path, err);
    if (n == 0) break;
    extra += (unsigned long long)n;
  }
  if (gz_ended_early(gz))
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt gzip stream: %s", path,
                        gz_ended_early(gz));
  if (extra > 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': %llu unexpected bytes after the data", path,
                        extra);
  return DT_OK;
}

/* Parses the magic number and dimensions into h. want_ndims 0 takes any number of
 * dimensions; only_u8 refuses every element type but unsigned bytes (dt_idx_read). */
static int read_header(gzFile gz, const char *path, int want_ndims, bool only_u8,
                       idx_header_t *h, dt_error_t *err) {
  uint8_t magic[4];
  size_t got = 0;
  int rc = read_fully(gz, path, magic, sizeof magic, &got, err);
  if (rc < 0) return rc;
  if (got < sizeof magic) return truncated(gz, path, "header bytes (IDX magic)", 4, got, err);

  uint32_t m = (uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 | (uint32_t)magic[2] << 8 |
               magic[3];
  if (magic[0] != 0 || magic[1] != 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': not an IDX file (magic 0x%08X)", path,
                        (unsigned)m);
  if (only_u8 && magic[2] != IDX_TYPE_U8)
    return dt_error_set(err, DT_ERR_FORMAT,
                        "'%s': unsupported IDX data type 0x%02X (only unsigned bytes, 0x08)",
                        path, (unsigned)magic[2]);
  if (!idx_dtype(magic[2], &h->type))
    return dt_error_set(err, DT_ERR_FORMAT,
                        "'%s': unsupported IDX data type 0x%02X (IDX defines 0x08 ubyte, 0x09 "
                        "byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)",
                        path, (unsigned)magic[2]);
  if (want_ndims && magic[3] != want_ndims)
    return dt_error_set(err, DT_ERR_FORMAT,
                        "'%s': expected an IDX file with %d dimension%s (magic 0x%08X), found "
                        "magic 0x%08X",
                        path, want_ndims, want_ndims == 1 ? "" : "s",
                        (unsigned)(0x800u | (unsigned)want_ndims), (unsigned)m);
  if (magic[3] == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': an IDX file with 0 dimensions (magic "
                        "0x%08X) has no samples", path, (unsigned)m);
  h->ndims = magic[3];

  uint8_t raw[4 * 255];
  size_t raw_len = 4 * (size_t)h->ndims;
  rc = read_fully(gz, path, raw, raw_len, &got, err);
  if (rc < 0) return rc;
  if (got < raw_len) return truncated(gz, path, "header bytes (dimensions)", raw_len, got, err);

  /* The product is checked against the limit after every factor, so it never overflows:
   * both operands are below 2^34 and 2^32, and a zero dimension keeps it at zero. */
  uint64_t prod = dt_dtype_size(h->type);
  for (int i = 0; i < h->ndims; i++) {
    const uint8_t *b = raw + 4 * i;
    h->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    prod *= h->dims[i];
    if (prod > IDX_MAX_BYTES)
      return dt_error_set(err, DT_ERR_FORMAT,
                          "'%s': IDX dimensions describe more than %llu bytes of data; the "
                          "header is probably corrupt",
                          path, (unsigned long long)IDX_MAX_BYTES);
  }
  if (prod > SIZE_MAX)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': %llu data bytes do not fit in memory here",
                        path, (unsigned long long)prod);
  h->total = prod;
  return DT_OK;
}

/* Reads the payload through a small buffer and drops it: every check of a full read,
 * none of its memory. *got is the number of bytes read (at most total). */
static int skim(gzFile gz, const char *path, uint64_t total, size_t *got, dt_error_t *err) {
  uint8_t chunk[1 << 16];
  *got = 0;
  while (*got < total) {
    size_t want = total - *got < sizeof chunk ? (size_t)(total - *got) : sizeof chunk, more = 0;
    int rc = read_fully(gz, path, chunk, want, &more, err);
    *got += more;
    if (rc < 0) return rc;
    if (more < want) break;
  }
  return DT_OK;
}

/* Reads (data non-NULL) or only checks a whole IDX file: see read_header for want_ndims
 * and only_u8. The payload is as in the file (big-endian). */
static int read_file(const char *path, int want_ndims, bool only_u8, uint8_t **data,
                     idx_header_t *h, dt_error_t *err) {
  if (data) *data = NULL;

  /* open() first, then gzdopen: gzopen does not promise a meaningful errno when the
   * file is missing or unreadable, and "No such file or directory" is the message
   * people need most often. */
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return dt_error_set(err, DT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    close(fd);
    return dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot set up the gzip reader", path);
  }
  /* A larger input buffer than zlib's 8 KiB default cuts the number of read calls on
   * the tens of megabytes a dataset is. Must come before the first read. */
  gzbuffer(gz, 1u << 17);

  uint8_t *buf = NULL;
  int rc = read_header(gz, path, want_ndims, only_u8, h, err);
  if (rc < 0) goto done;
  uint64_t total = h->total;

  /* The header is only a claim: a 13-byte file may say it holds 4 GiB. An uncompressed
   * file is checked against its real size before anything is allocated... */
  size_t header_bytes = 4 + 4 * (size_t)h->ndims;
  struct stat st;
  if (gzdirect(gz) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_size < header_bytes + total) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': truncated: expected %llu data bytes after the "
                      "header, got %llu (the file's size)", path, (unsigned long long)total,
                      (unsigned long long)((uint64_t)st.st_size - header_bytes));
    goto done;
  }
  size_t got = 0;
  if (!data) {
    rc = skim(gz, path, total, &got, err);
    if (rc == DT_OK && got < total) rc = truncated(gz, path, "data bytes after the header", total, got, err);
    if (rc == DT_OK) rc = check_no_trailing(gz, path, err);
    goto done;
  }
  /* ... and a compressed one (whose real size shows only by inflating it) is read
   * into a buffer that grows with the data that actually arrives. */
  size_t cap = total < READ_START_BYTES ? (size_t)total : READ_START_BYTES;
  buf = malloc(cap > 0 ? cap : 1); /* malloc(0) may return NULL */
  while (buf) {
    size_t more = 0;
    rc = read_fully(gz, path, buf + got, cap - got, &more, err);
    got += more;
    if (rc < 0 || got < cap || cap == total) break;
    size_t grown = cap > (size_t)total / 2 ? (size_t)total : 2 * cap;
    uint8_t *bigger = realloc(buf, grown);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap = grown;
  }
  if (!buf) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot allocate %llu bytes for the data", path,
                      (unsigned long long)total);
    goto done;
  }
  if (rc < 0) goto done;
  if (got < total) {
    rc = truncated(gz, path, "data bytes after the header", total, got, err);
    goto done;
  }
  rc = check_no_trailing(gz, path, err);

done:
  if (gzclose(gz) != Z_OK && rc == DT_OK)
    rc = dt_error_set(err, DT_ERR_IO, "'%s': error while closing: %s", path, strerror(errno));
  if (rc < 0) {
    free(buf);
    return rc;
  }
  if (data) *data = buf;
  return DT_OK;
}

int dt_idx_read(const char *path, int expect_ndims, uint8_t **data, uint32_t *dims,
                dt_error_t *err) {
  if (data) *data = NULL;
  if (expect_ndims < 1 || expect_ndims > 255)
    return dt_error_set(err, DT_ERR_ARG, "'%s': IDX files have 1 to 255 dimensions, not %d",
                        path, expect_ndims);
  idx_header_t h;
  int rc = read_file(path, expect_ndims, true, data, &h, err);
  if (rc < 0) return rc;
  memcpy(dims, h.dims, sizeof *dims * (size_t)expect_ndims);
  return DT_OK;
}

/* Turns count values of size bytes each from big-endian (the file) into host order, in
 * place. Assembling each value from its bytes is right whatever the host's order. */
static void to_host_order(uint8_t *p, size_t count, size_t size) {
  for (size_t k = 0; k < count; k++, p += size) {
    if (size == 2) {
      uint16_t v = (uint16_t)(p[0] << 8 | p[1]);
      memcpy(p, &v, 2);
    } else if (size == 4) {
      uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
      memcpy(p, &v, 4);
    } else if (size == 8) {
      uint64_t v = 0;
      for (int b = 0; b < 8; b++) v = v << 8 | p[b];
      memcpy(p, &v, 8);
    }
  }
}

int dt_idx_load(const char *path, dt_dataset_t *out, dt_error_t *err) {
  memset(out, 0, sizeof *out);
  idx_header_t h;
  uint8_t *buf = NULL;
  int rc = read_file(path, 0, false, &buf, &h, err);
  if (rc < 0) return rc;
  if ((rc = dt_data_own(out, buf, err))) return rc;
  if (h.ndims > 1 + DT_DATA_MAX_DIMS) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': an IDX file of %d dimensions; at most %d are "
                      "supported (the samples, then up to %d per sample)", path, h.ndims,
                      1 + DT_DATA_MAX_DIMS, DT_DATA_MAX_DIMS);
    goto fail;
  }
  out->n = h.dims[0];
  if (h.ndims == 1) {
    /* A vector: one value per sample (labels, or a regression target). */
    out->ndim = 1;
    out->shape[0] = 1;
  } else {
    out->ndim = h.ndims - 1;
    for (int i = 1; i < h.ndims; i++) {
      /* shape[] is int, and an empty sample has nothing to learn from. */
      if (h.dims[i] == 0 || h.dims[i] > INT_MAX) {
        rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': dimension %d of the IDX file is %lu; it "
                          "must be between 1 and %d", path, i, (unsigned long)h.dims[i], INT_MAX);
        goto fail;
      }
      out->shape[i - 1] = (int)h.dims[i];
    }
  }
  out->dim = 1;
  for (int i = 0; i < out->ndim; i++) out->dim *= (size_t)out->shape[i];
  size_t size = dt_dtype_size(h.type);
  if (size > 1) to_host_order(buf, out->n * out->dim, size);
  out->x = (dt_array_t){h.type, buf, out->dim};
  out->ykind = DT_Y_NONE;
  char where[PATH_MAX + 8];
  snprintf(where, sizeof where, "'%s'", path);
  if ((rc = dt_io_check_finite(where, h.type, buf, out->n, out->dim, out->shape, out->ndim, err)))
    goto fail;
  char *what = strdup(path);
  if (!what) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory copying '%s'", path);
    goto fail;
  }
  out->what = what;
  if ((rc = dt_data_own(out, what, err))) goto fail;
  return DT_OK;

fail:
  dt_dataset_free(out);
  return rc;
}

int dt_idx_load_pair(dt_dataset_t *ds, const char *images_path, const char *labels_path,
                     bool keep_images, dt_error_t *err) {
  memset(ds, 0, sizeof *ds);

  uint8_t *images = NULL, *raw_labels = NULL;
  uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
  int rc = dt_idx_read(images_path, 3, keep_images ? &images : NULL, idims, err);
  if (rc < 0) return rc;
  rc = dt_idx_read(labels_path, 1, &raw_labels, ldims, err);
  if (rc < 0) goto fail;

  if (idims[0] != ldims[0]) {
    rc = dt_error_set(err, DT_ERR_FORMAT,
                      "label/image count mismatch: '%s' has %lu images, '%s' has %lu labels",
                      images_path, (unsigned long)idims[0], labels_path,
                      (unsigned long)ldims[0]);
    goto fail;
  }
  /* shape[] is int; the 2^34-byte cap on the file does not by itself keep one side of
   * an image below INT_MAX. */
  if (idims[1] == 0 || idims[2] == 0 || idims[1] > INT_MAX || idims[2] > INT_MAX) {
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': unusable image size %lu x %lu", images_path,
                      (unsigned long)idims[1], (unsigned long)idims[2]);
    goto fail;
  }

  size_t n = idims[0];
  /* Labels are widened to int32 once here so that gathering a batch is a plain copy
   * into the int32 targets the losses expect. */
  int32_t *labels = malloc((n > 0 ? n : 1) * sizeof *labels);
  if (!labels) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot allocate %zu labels", labels_path, n);
    goto fail;
  }
  int max_label = -1;
  for (size_t i = 0; i < n; i++) {
    labels[i] = raw_labels[i];
    if (labels[i] > max_label) max_label = labels[i];
  }
  free(raw_labels);
  raw_labels = NULL;

  ds->n = n;
  ds->shape[0] = (int)idims[1];
  ds->shape[1] = (int)idims[2];
  ds->shape[2] = 1;
  ds->ndim = 3;
  ds->dim = (size_t)idims[1] * idims[2];
  ds->x = (dt_array_t){DT_U8, images, ds->dim};
  ds->ykind = DT_Y_CLASSES;
  ds->y = (dt_array_t){DT_I32, labels, 1};
  ds->num_classes = max_label + 1;
  ds->what = images_path;
  ds->y_what = labels_path;
  if ((rc = dt_data_own(ds, labels, err))) {
    free(images);
    return rc;
  }
  if (images && (rc = dt_data_own(ds, images, err))) {
    dt_dataset_free(ds);
    return rc;
  }
  return DT_OK;

fail:
  free(images);
  free(raw_labels);
  return rc;
}
