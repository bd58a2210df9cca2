/* Stored zip entries in memory (see zip_write.h). Each entry is a local header, the
 * bytes as they are, and a central directory record; the archive ends with the
 * end-of-central-directory record. Times are 1980-01-01 00:00, as Keras writes them,
 * so that the same model gives the same bytes. */
#include "zip_write.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { LOC_SIG = 0x04034b50, CEN_SIG = 0x02014b50, EOCD_SIG = 0x06054b50 };
enum { DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1 }; /* year 1980 + 0, January, day 1 */

static int grow(unsigned char **p, size_t *cap, size_t need, dt_error_t *err) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  unsigned char *q = realloc(*p, c);
  if (!q) return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing a zip archive");
  *p = q, *cap = c;
  return 0;
}

static void put16(unsigned char *p, unsigned v) { p[0] = v & 0xff, p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, uint32_t v) {
  put16(p, v & 0xffff);
  put16(p + 2, v >> 16);
}

int dt_zip_writer_add(dt_zip_writer_t *z, const char *name, const void *data, size_t len,
                      dt_error_t *err) {
  size_t nlen = strlen(name);
  if (len >= 0xffffffffu || z->len + 30 + nlen + len >= 0xffffffffu || nlen > 0xffff ||
      z->entries >= 0xffff)
    return dt_error_set(err, DT_ERR_ARG, "zip entry '%s': %zu bytes is too large for a "
                        "zip without zip64", name, len);
  uLong crc = crc32(0L, Z_NULL, 0);
  /* zlib's crc32 takes an unsigned int length: feed it in pieces. */
  for (size_t off = 0; off < len;) {
    size_t n = len - off > (1u << 30) ? (1u << 30) : len - off;
    crc = crc32(crc, (const Bytef *)data + off, (uInt)n);
    off += n;
  }
  int rc;
  if ((rc = grow(&z->buf, &z->cap, z->len + 30 + nlen + len, err)) ||
      (rc = grow(&z->cen, &z->cen_cap, z->cen_len + 46 + nlen, err)))
    return rc;
  unsigned char *l = z->buf + z->len;
  memset(l, 0, 30);
  put32(l, LOC_SIG);
  put16(l + 4, 20); /* version needed: 2.0 */
  put16(l + 12, DOS_DATE_1980);
  put32(l + 14, (uint32_t)crc);
  put32(l + 18, (uint32_t)len);
  put32(l + 22, (uint32_t)len);
  put16(l + 26, (unsigned)nlen);
  memcpy(l + 30, name, nlen);
  if (len) memcpy(l + 30 + nlen, data, len);

  unsigned char *c = z->cen + z->cen_len;
  memset(c, 0, 46);
  put32(c, CEN_SIG);
  put16(c + 4, 20);
  put16(c + 6, 20);
  put16(c + 14, DOS_DATE_1980);
  put32(c + 16, (uint32_t)crc);
  put32(c + 20, (uint32_t)len);
  put32(c + 24, (uint32_t)len);
  put16(c + 28, (unsigned)nlen);
  put32(c + 42, (uint32_t)z->len); /* the local header's offset */
  memcpy(c + 46, name, nlen);
  z->cen_len += 46 + nlen;
  z->len += 30 + nlen + len;
  z->entries++;
  return 0;
}

int dt_zip_writer_finish(dt_zip_writer_t *z, dt_error_t *err) {
  if (z->len + z->cen_len + 22 >= 0xffffffffu)
    return dt_error_set(err, DT_ERR_ARG, "zip archive too large without zip64");
  int rc = grow(&z->buf, &z->cap, z->len + z->cen_len + 22, err);
  if (rc) return rc;
  size_t cen_off = z->len;
  if (z->cen_len) memcpy(z->buf + z->len, z->cen, z->cen_len);
  z->len += z->cen_len;
  unsigned char *e = z->buf + z->len;
  memset(e, 0, 22);
  put32(e, EOCD_SIG);
  put16(e + 8, (unsigned)z->entries);
  put16(e + 10, (unsigned)z->entries);
  put32(e + 12, (uint32_t)z->cen_len);
  put32(e + 16, (uint32_t)cen_off);
  z->len += 22;
  return 0;
}

void dt_zip_writer_free(dt_zip_writer_t *z) {
  free(z->buf);
  free(z->cen);
  memset(z, 0, sizeof *z);
}
