/* A zip reader for .npz archives (see zip.h), over bytes already in memory.
 *
 * The central directory (found through the end-of-central-directory record, or its
 * zip64 form) is the authority on names, methods, sizes and CRCs; a local header is
 * only checked to agree on the name and skipped to reach the data. NumPy writes every
 * entry with zip64 sizes in its local header (zipfile's force_zip64) and in the central
 * directory only when an entry passes 4 GiB, so both forms are read. Every offset and
 * size from the file is checked against the archive's length before it is used. */
#include "dtrain/zip.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum {
  EOCD_SIG = 0x06054b50,
  EOCD_LEN = 22,
  LOC64_SIG = 0x07064b50,
  LOC64_LEN = 20,
  EOCD64_SIG = 0x06064b50,
  EOCD64_LEN = 56,
  CEN_SIG = 0x02014b50,
  CEN_LEN = 46,
  LOC_SIG = 0x04034b50,
  LOC_LEN = 30,
  ZIP64_EXTRA = 0x0001
};

/* Deflate cannot expand data by more than 1032 to 1; a directory that claims more is
 * corrupt, and refusing it keeps a hostile archive from choosing our allocation size. */
#define DEFLATE_MAX_RATIO 1032u

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

void dt_zip_name(const dt_zip_entry_t *e, char *buf, size_t len) {
  size_t n = e->name_len < len - 1 ? e->name_len : len - 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)e->name[i];
    buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  buf[n] = '\0';
}

/* The directory's place: [*cd_off, *cd_off + *cd_size) holding *count entries, ending
 * at or before *cd_end (where the end records begin). */
typedef struct {
  uint64_t count, cd_off, cd_size, cd_end;
} directory_t;

static int find_directory(const char *path, const unsigned char *data, size_t len,
                          directory_t *d, dt_error_t *err) {
  if (len < EOCD_LEN)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': not a zip archive: %zu bytes is shorter "
                        "than an end-of-central-directory record (22)", path, len);
  /* The record ends the file, followed only by its comment (at most 65535 bytes), so
   * the search goes backwards and takes the first record whose comment reaches exactly
   * the end of the file. */
  size_t lowest = len - EOCD_LEN > 65535 ? len - EOCD_LEN - 65535 : 0;
  size_t pos = len - EOCD_LEN + 1;
  const unsigned char *e = NULL;
  while (pos-- > lowest) {
    const unsigned char *p = data + pos;
    if (le32(p) == EOCD_SIG && pos + EOCD_LEN + le16(p + 20) == len) {
      e = p;
      break;
    }
  }
  if (!e)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': not a zip archive (no end-of-central-"
                        "directory record; the file may be truncated)", path);
  if (le16(e + 4) != 0 || le16(e + 6) != 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': multi-disk zip archives are not supported",
                        path);
  d->count = le16(e + 10);
  d->cd_size = le32(e + 12);
  d->cd_off = le32(e + 16);
  d->cd_end = pos;
  if (pos >= LOC64_LEN && le32(e - LOC64_LEN) == LOC64_SIG) {
    /* zip64: the locator just before the record points at the zip64 record, whose
     * 64-bit fields replace the saturated 16- and 32-bit ones. */
    const unsigned char *loc = e - LOC64_LEN;
    uint64_t off = le64(loc + 8);
    if (off > pos - LOC64_LEN || pos - LOC64_LEN - off < EOCD64_LEN ||
        le32(data + off) != EOCD64_SIG)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: the zip64 locator points at "
                          "offset %llu, where no zip64 end record is", path,
                          (unsigned long long)off);
    const unsigned char *z = data + off;
    d->count = le64(z + 32);
    d->cd_size = le64(z + 40);
    d->cd_off = le64(z + 48);
    d->cd_end = off;
  } else if (d->count == 0xffff || d->cd_size == 0xffffffffu || d->cd_off == 0xffffffffu) {
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: the end record needs a zip64 "
                        "record, which is missing", path);
  }
  if (d->cd_off > d->cd_end || d->cd_size > d->cd_end - d->cd_off)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: the central directory (%llu "
                        "bytes at offset %llu) does not fit before its end record at %llu", path,
                        (unsigned long long)d->cd_size, (unsigned long long)d->cd_off,
                        (unsigned long long)d->cd_end);
  return DT_OK;
}

/* Applies a zip64 extra field to the saturated sizes and offset of e. */
static int apply_zip64(const char *path, const unsigned char *extra, size_t extra_len,
                       dt_zip_entry_t *e, dt_error_t *err) {
  bool need_u = e->usize == 0xffffffffu, need_c = e->csize == 0xffffffffu,
       need_o = e->local_offset == 0xffffffffu;
  size_t at = 0;
  while (at + 4 <= extra_len) {
    unsigned id = le16(extra + at), size = le16(extra + at + 2);
    if (size > extra_len - at - 4) break;
    if (id == ZIP64_EXTRA) {
      /* The fields are present in this order, each only when its short form is full. */
      const unsigned char *f = extra + at + 4, *end = f + size;
      if (need_u && end - f >= 8) e->usize = le64(f), f += 8, need_u = false;
      if (need_c && end - f >= 8) e->csize = le64(f), f += 8, need_c = false;
      if (need_o && end - f >= 8) e->local_offset = le64(f), need_o = false;
      break;
    }
    at += 4 + (size_t)size;
  }
  if (need_u || need_c || need_o) {
    char name[128];
    dt_zip_name(e, name, sizeof name);
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt zip: a 32-bit size or "
                        "offset says zip64, but the zip64 extra field is missing or short",
                        path, name);
  }
  return DT_OK;
}

int dt_zip_each(const char *path, const unsigned char *data, size_t len,
                int (*fn)(void *arg, const dt_zip_entry_t *e), void *arg, dt_error_t *err) {
  directory_t d = {0, 0, 0, 0};
  int rc = find_directory(path, data, len, &d, err);
  if (rc) return rc;
  uint64_t at = d.cd_off, end = d.cd_off + d.cd_size;
  for (uint64_t i = 0; i < d.count; i++) {
    if (end - at < CEN_LEN || le32(data + at) != CEN_SIG)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: central directory entry %llu "
                          "of %llu at offset %llu is missing or cut short", path,
                          (unsigned long long)i, (unsigned long long)d.count,
                          (unsigned long long)at);
    const unsigned char *c = data + at;
    size_t n = le16(c + 28), m = le16(c + 30), k = le16(c + 32);
    if (end - at - CEN_LEN < (uint64_t)n + m + k)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: central directory entry %llu "
                          "runs past the directory's end", path, (unsigned long long)i);
    dt_zip_entry_t e = {
        .name = (const char *)c + CEN_LEN,
        .name_len = n,
        .flags = le16(c + 8),
        .method = le16(c + 10),
        .crc = le32(c + 16),
        .csize = le32(c + 20),
        .usize = le32(c + 24),
        .local_offset = le32(c + 42),
    };
    if ((rc = apply_zip64(path, c + CEN_LEN + n, m, &e, err))) return rc;
    if ((rc = fn(arg, &e))) return rc;
    at += CEN_LEN + n + m + k;
  }
  if (at != end)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt zip: the central directory holds "
                        "%llu bytes after its %llu entries", path, (unsigned long long)(end - at),
                        (unsigned long long)d.count);
  return DT_OK;
}

static const char *method_name(unsigned m) {
  switch (m) {
    case 12: return " (bzip2)";
    case 14: return " (lzma)";
    case 93: return " (zstd)";
    case 95: return " (xz)";
    default: return "";
  }
}

/* Raw deflate (no zlib or gzip wrapper) of in into exactly out_len bytes. */
static int inflate_entry(const char *path, const char *name, const unsigned char *in,
                         uint64_t in_len, unsigned char *out, uint64_t out_len,
                         dt_error_t *err) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
    return dt_error_set(err, DT_ERR_NOMEM, "'%s', entry '%s': cannot set up zlib", path, name);
  uint64_t fed = 0, taken = 0;
  /* Once every promised byte is out, inflate gets one more byte of room: the stream
   * must end without using it. */
  unsigned char probe;
  bool probing = false, overflow = false;
  int zrc;
  for (;;) {
    /* avail_in and avail_out are unsigned int: entries past 4 GiB go in pieces. */
    if (z.avail_in == 0 && fed < in_len) {
      uint64_t piece = in_len - fed < UINT_MAX ? in_len - fed : UINT_MAX;
      z.next_in = (unsigned char *)in + fed;
      z.avail_in = (unsigned)piece;
      fed += piece;
    }
    if (z.avail_out == 0) {
      if (taken < out_len) {
        uint64_t piece = out_len - taken < UINT_MAX ? out_len - taken : UINT_MAX;
        z.next_out = out + taken;
        z.avail_out = (unsigned)piece;
        taken += piece;
      } else {
        z.next_out = &probe;
        z.avail_out = 1;
        probing = true;
      }
    }
    zrc = inflate(&z, Z_NO_FLUSH);
    if (probing && z.avail_out == 0) {
      overflow = true;
      break;
    }
    /* Z_BUF_ERROR: no progress possible, which with room for output means the
     * compressed bytes ran out before the stream ended. */
    if (zrc != Z_OK) break;
  }
  uint64_t produced = (uint64_t)z.total_out, left = (uint64_t)z.avail_in + (in_len - fed);
  const char *msg = z.msg ? z.msg : "invalid data";
  int rc = DT_OK;
  if (overflow)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': size mismatch: the deflate stream "
                      "holds more than the %llu bytes the zip directory says", path, name,
                      (unsigned long long)out_len);
  else if (zrc == Z_STREAM_END && produced < out_len)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': size mismatch: expected %llu "
                      "bytes (the zip directory), got %llu from the deflate stream", path, name,
                      (unsigned long long)out_len, (unsigned long long)produced);
  else if (zrc == Z_STREAM_END && left > 0)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': the deflate stream ends %llu "
                      "bytes before the entry's %llu compressed bytes do", path, name,
                      (unsigned long long)left, (unsigned long long)in_len);
  else if (zrc == Z_MEM_ERROR)
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s', entry '%s': out of memory inflating", path,
                      name);
  else if (zrc == Z_BUF_ERROR)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': the deflate stream is cut short "
                      "(%llu compressed bytes gave %llu of %llu bytes)", path, name,
                      (unsigned long long)in_len, (unsigned long long)produced,
                      (unsigned long long)out_len);
  else if (zrc != Z_STREAM_END)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt deflate stream: %s",
                      path, name, msg);
  inflateEnd(&z);
  return rc;
}

static uint32_t crc_of(const unsigned char *p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt piece = n < (1u << 30) ? (uInt)n : (1u << 30);
    crc = crc32(crc, p, piece);
    p += piece;
    n -= piece;
  }
  return (uint32_t)crc;
}

int dt_zip_extract(const char *path, const unsigned char *data, size_t len,
                   const dt_zip_entry_t *e, const unsigned char **out, unsigned char **owned,
                   dt_error_t *err) {
  *out = NULL;
  *owned = NULL;
  char name[128];
  dt_zip_name(e, name, sizeof name);
  if (e->flags & 1)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': encrypted entries are not "
                        "supported", path, name);
  if (e->method != 0 && e->method != 8)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': compression method %u%s is not "
                        "supported (only stored, 0, and deflated, 8: np.savez and "
                        "np.savez_compressed)", path, name, (unsigned)e->method,
                        method_name(e->method));
  uint64_t lo = e->local_offset;
  if (lo > len || len - lo < LOC_LEN || le32(data + lo) != LOC_SIG)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt zip: no local header at "
                        "offset %llu", path, name, (unsigned long long)lo);
  const unsigned char *l = data + lo;
  size_t n = le16(l + 26), m = le16(l + 28);
  uint64_t start = lo + LOC_LEN + n + m;
  if (start > len || n != e->name_len || memcmp(l + LOC_LEN, e->name, n) != 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt zip: the local header "
                        "at offset %llu does not match the central directory", path, name,
                        (unsigned long long)lo);
  if (e->csize > len - start)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': truncated: expected %llu "
                        "compressed bytes at offset %llu, the file has %llu", path, name,
                        (unsigned long long)e->csize, (unsigned long long)start,
                        (unsigned long long)(len - start));
  const unsigned char *in = data + start;
  const unsigned char *bytes = in;
  if (e->method == 0) {
    if (e->csize != e->usize)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt zip: a stored entry of "
                          "%llu bytes says it holds %llu", path, name,
                          (unsigned long long)e->csize, (unsigned long long)e->usize);
  } else {
    if (e->usize / DEFLATE_MAX_RATIO > e->csize + 1)
      return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': corrupt zip: %llu compressed "
                          "bytes cannot inflate to the %llu the directory says", path, name,
                          (unsigned long long)e->csize, (unsigned long long)e->usize);
    if (e->usize > SIZE_MAX - 1)
      return dt_error_set(err, DT_ERR_NOMEM, "'%s', entry '%s': %llu bytes do not fit in "
                          "memory here", path, name, (unsigned long long)e->usize);
    unsigned char *buf = malloc(e->usize ? (size_t)e->usize : 1);
    if (!buf)
      return dt_error_set(err, DT_ERR_NOMEM, "'%s', entry '%s': cannot allocate %llu bytes to "
                          "inflate it into", path, name, (unsigned long long)e->usize);
    int rc = inflate_entry(path, name, in, e->csize, buf, e->usize, err);
    if (rc) {
      free(buf);
      return rc;
    }
    bytes = buf;
    *owned = buf;
  }
  uint32_t crc = crc_of(bytes, e->usize);
  if (crc != e->crc) {
    free(*owned);
    *owned = NULL;
    return dt_error_set(err, DT_ERR_FORMAT, "'%s', entry '%s': CRC-32 mismatch: expected "
                        "0x%08x (the zip directory), got 0x%08x; the archive is corrupt", path,
                        name, (unsigned)e->crc, (unsigned)crc);
  }
  *out = bytes;
  return DT_OK;
}
