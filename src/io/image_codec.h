/* The two decoders behind image.h (private to src/io): image.c recognizes the format by
 * its signature and calls these with f at the file's start. decode == false reads only
 * the header (*pixels untouched); decode == true also reads the pixels. */
#ifndef DTRAIN_IMAGE_CODEC_H
#define DTRAIN_IMAGE_CODEC_H

#include <stdbool.h>

#include "dtrain/image.h"

int dt_png_read(FILE *f, const char *what, bool decode, dt_image_info_t *info, uint8_t **pixels,
                dt_error_t *err);
int dt_jpeg_read(FILE *f, const char *what, bool decode, dt_image_info_t *info,
                 uint8_t **pixels, dt_error_t *err);

/* The size check both decoders apply as soon as they know the size. */
int dt_image_check_size(const char *what, const char *format, uint64_t width, uint64_t height,
                        dt_error_t *err);

#endif
