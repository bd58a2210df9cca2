/* A minimal PNG encoder for TensorBoard image summaries: 8-bit gray, gray+alpha, RGB
 * or RGBA, no interlacing, filter type 0 (None) on every row, one IDAT chunk
 * compressed with zlib. Small images from a training run do not need more. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "events_internal.h"

/* zlib's window (2^bits bytes) and memory level for the IDAT stream: see dt_png_encode. */
enum { PNG_WINDOW_BITS = 12, PNG_MEM_LEVEL = 6 };

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Writes a chunk (length, type, data, CRC-32 of type and data) at p; returns its size. */
static size_t put_chunk(uint8_t *p, const char type[4], const uint8_t *data, size_t len) {
  put_be32(p, (uint32_t)len);
  memcpy(p + 4, type, 4);
  if (len > 0 && data != p + 8) memcpy(p + 8, data, len);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, p + 4, (uInt)(len + 4));
  put_be32(p + 8 + len, (uint32_t)crc);
  return len + 12;
}

int dt_png_encode(const uint8_t *pixels, int height, int width, int channels, uint8_t **png,
                  size_t *png_len, dt_error_t *err) {
  static const uint8_t color_type[5] = {0, 0, 4, 2, 6};
  *png = NULL;
  *png_len = 0;
  if (height <= 0 || width <= 0 || channels < 1 || channels > 4 || !pixels)
    return dt_error_set(err, DT_ERR_ARG, "image: bad size %dx%dx%d (channels must be 1-4)",
                        height, width, channels);
  /* Keep the uncompressed image well inside zlib's 32-bit lengths. */
  size_t row = (size_t)width * (size_t)channels + 1;
  if ((size_t)height > ((size_t)1 << 28) / row)
    return dt_error_set(err, DT_ERR_ARG, "image: %dx%dx%d is too large (at most 256 MiB)",
                        height, width, channels);
  size_t raw_len = row * (size_t)height;
  /* Rows are fed to deflate one by one, each after its filter byte, so no filtered
   * copy of the image is made; a 4 KiB window (several rows of a typical summary
   * image) keeps zlib's state near 48 KiB instead of 256 KiB. The peak memory of a
   * training run with image summaries depends on it. */
  z_stream z;
  memset(&z, 0, sizeof z);
  int zrc = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, PNG_WINDOW_BITS, PNG_MEM_LEVEL,
                         Z_DEFAULT_STRATEGY);
  if (zrc != Z_OK)
    return dt_error_set(err, zrc == Z_MEM_ERROR ? DT_ERR_NOMEM : DT_ERR_STATE,
                        "image: zlib deflateInit2 failed (%d)", zrc);
  uLong zcap = deflateBound(&z, (uLong)raw_len);
  size_t cap = 8 + (12 + 13) + (12 + (size_t)zcap) + 12;
  uint8_t *out = malloc(cap);
  if (!out) {
    deflateEnd(&z);
    return dt_error_set(err, DT_ERR_NOMEM, "image: out of memory");
  }
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(out, signature, 8);
  size_t pos = 8;

  uint8_t ihdr[13];
  put_be32(ihdr, (uint32_t)width);
  put_be32(ihdr + 4, (uint32_t)height);
  ihdr[8] = 8; /* bits per sample */
  ihdr[9] = color_type[channels];
  ihdr[10] = 0; /* deflate */
  ihdr[11] = 0; /* adaptive filtering, with per-row filter bytes */
  ihdr[12] = 0; /* no interlace */
  pos += put_chunk(out + pos, "IHDR", ihdr, sizeof ihdr);

  /* Compress straight into the IDAT chunk's data area. */
  z.next_out = out + pos + 8;
  z.avail_out = (uInt)zcap;
  static const uint8_t filter_none = 0;
  for (int y = 0; y < height && zrc == Z_OK; y++) {
    z.next_in = (Bytef *)&filter_none;
    z.avail_in = 1;
    zrc = deflate(&z, Z_NO_FLUSH);
    z.next_in = (Bytef *)(pixels + (size_t)y * (row - 1));
    z.avail_in = (uInt)(row - 1);
    if (zrc == Z_OK) zrc = deflate(&z, Z_NO_FLUSH);
  }
  if (zrc == Z_OK) zrc = deflate(&z, Z_FINISH);
  uLong zlen = z.total_out;
  deflateEnd(&z);
  if (zrc != Z_STREAM_END) {
    free(out);
    return dt_error_set(err, zrc == Z_MEM_ERROR ? DT_ERR_NOMEM : DT_ERR_STATE,
                        "image: zlib deflate failed (%d)", zrc);
  }
  pos += put_chunk(out + pos, "IDAT", out + pos + 8, (size_t)zlen);
  pos += put_chunk(out + pos, "IEND", NULL, 0);
  *png = out;
  *png_len = pos;
  return DT_OK;
}
