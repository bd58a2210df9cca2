/* One image file (image.h): the format recognized by its signature, the size limit, and
 * channel conversion. The decoders are png_decode.c and jpeg_decode.c; resizing is in
 * image_resize.c. */
#include "dtrain/image.h"

#include <stdbool.h>
#include <string.h>


static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int dt_image_check_size(const char *what, const char *format, uint64_t width, uint64_t height,
                        dt_error_t *err) {
  if (width == 0 || height == 0)
    return dt_error_set(err, DT_ERR_FORMAT, "'%s': %s image of %llu x %llu pixels", what,
                        format, (unsigned long long)height, (unsigned long long)width);
  if (width > DT_IMAGE_MAX_PIXELS || height > DT_IMAGE_MAX_PIXELS ||
      width * height > DT_IMAGE_MAX_PIXELS)
    return dt_error_set(err, DT_ERR_FORMAT,
                        "'%s': %s image of %llu x %llu pixels is larger than the %llu pixels "
                        "read at most",
                        what, format, (unsigned long long)height, (unsigned long long)width,
                        (unsigned long long)DT_IMAGE_MAX_PIXELS);
  return DT_OK;
}

/* Dispatches on the first bytes; f is left where the decoder left it. */
static int read_image(FILE *f, const char *what, bool decode, dt_image_info_t *info,
                      uint8_t **pixels, dt_error_t *err) {
  uint8_t head[8];
  size_t got = fread(head, 1, sizeof head, f);
  if (ferror(f) || fseek(f, 0, SEEK_SET) != 0)
    return dt_error_set(err, DT_ERR_IO, "'%s': read failed", what);
  if (got == sizeof head && memcmp(head, PNG_SIGNATURE, sizeof head) == 0)
    return dt_image_png_read(f, what, decode, info, pixels, err);
  if (got >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
    return dt_image_jpeg_read(f, what, decode, info, pixels, err);
  if (got == 0) return dt_error_set(err, DT_ERR_FORMAT, "'%s': empty file, not an image", what);
  char hex[3 * sizeof head + 1] = "";
  for (size_t i = 0; i < got; i++) snprintf(hex + 3 * i, 4, " %02X", head[i]);
  return dt_error_set(err, DT_ERR_FORMAT,
                      "'%s': neither a PNG nor a JPEG file (it starts with bytes%s)", what, hex);
}

int dt_image_probe(FILE *f, const char *what, dt_image_info_t *info, dt_error_t *err) {
  return read_image(f, what, false, info, NULL, err);
}

int dt_image_decode(FILE *f, const char *what, dt_image_info_t *info, uint8_t **pixels,
                    dt_error_t *err) {
  *pixels = NULL;
  return read_image(f, what, true, info, pixels, err);
}

void dt_image_convert_channels(const uint8_t *src, int src_channels, uint8_t *dst,
                               int dst_channels, size_t n) {
  if (src_channels == dst_channels) {
    memcpy(dst, src, n * (size_t)src_channels);
  } else if (src_channels == 1) {
    for (size_t i = 0; i < n; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[i];
  } else {
    for (size_t i = 0; i < n; i++) {
      const uint8_t *p = src + 3 * i;
      dst[i] = (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
    }
  }
}
