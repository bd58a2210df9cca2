/* One image file: reading a PNG's or JPEG's header, decoding it to 8-bit pixels (with
 * Debian's libpng and libjpeg-turbo), converting between grayscale and RGB, and bilinear
 * resizing. The image-folder datasets (images.h) are built on these; the fuzz target
 * fuzz_image drives them directly.
 *
 * The format is recognized by the file's first bytes, not its name, so a PNG named .jpg
 * still decodes. Every function is safe to call from several threads at once (no state
 * outside its arguments). Library errors become dt errors naming `what` (the file);
 * nothing is printed. */
#ifndef DTRAIN_IMAGE_H
#define DTRAIN_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dtrain/error.h"

/* The largest image we decode, in pixels (8192 x 8192): a header may claim any size, and
 * a hostile one must not make us allocate gigabytes. */
#define DT_IMAGE_MAX_PIXELS ((uint64_t)1 << 26)

typedef enum { DT_IMAGE_PNG, DT_IMAGE_JPEG } dt_image_format;

typedef struct {
  dt_image_format format;
  int height, width;
  /* What the file holds once alpha is dropped and palettes are expanded: 1 (gray, gray +
   * alpha) or 3 (RGB, RGBA, palette; JPEG YCbCr or RGB). */
  int channels;
} dt_image_info_t;

/* Reads only the header of the file open in f (at its start): PNG up to the first image
 * data (libpng's png_read_info), JPEG up to the first scan (jpeg_read_header). Errors: not
 * a PNG or JPEG, a corrupt or truncated header, a JPEG color space other than gray, YCbCr
 * or RGB (CMYK), an image larger than DT_IMAGE_MAX_PIXELS. */
int dt_image_probe(FILE *f, const char *what, dt_image_info_t *info, dt_error_t *err);

/* Decodes the whole file open in f (at its start) into *pixels (malloc'd, height *
 * width * info->channels bytes, HWC; the caller frees it). PNGs: palettes become RGB,
 * 16-bit samples keep their high byte (libpng's png_set_strip_16, as TensorFlow does),
 * 1/2/4-bit gray is expanded to 0..255, alpha is dropped (not composited), interlacing
 * is undone. Any libpng error or libjpeg error or warning (a truncated file, corrupt
 * data) is an error; libpng's warnings about ancillary chunks (color profiles, text) are
 * ignored. */
int dt_image_decode(FILE *f, const char *what, dt_image_info_t *info, uint8_t **pixels,
                    dt_error_t *err);

/* The decoders by format (png_decode.c, jpeg_decode.c), which dt_image_probe and
 * dt_image_decode choose between by the file's signature; f is at the file's start.
 * decode == false reads only the header (*pixels untouched). */
int dt_image_png_read(FILE *f, const char *what, bool decode, dt_image_info_t *info,
                      uint8_t **pixels, dt_error_t *err);
int dt_image_jpeg_read(FILE *f, const char *what, bool decode, dt_image_info_t *info,
                       uint8_t **pixels, dt_error_t *err);

/* The size check both decoders apply as soon as they know the size: at least 1 x 1, at
 * most DT_IMAGE_MAX_PIXELS. `format` ("PNG") is for the message. */
int dt_image_check_size(const char *what, const char *format, uint64_t width, uint64_t height,
                        dt_error_t *err);

/* Converts n pixels between channel counts (1 or 3): gray to RGB repeats the value; RGB
 * to gray is ITU-R 601-2 luma, L = (19595 R + 38470 G + 7471 B + 32768) >> 16, the
 * rounding Pillow's convert("L") uses. Same counts: a copy. dst must not overlap src. */
void dt_image_convert_channels(const uint8_t *src, int src_channels, uint8_t *dst,
                               int dst_channels, size_t n);

/* Resizes (sh, sw, c) 8-bit pixels to (dh, dw, c) floats by bilinear interpolation with
 * half-pixel centers and no antialiasing, as TensorFlow's tf.image.resize(...,
 * "bilinear", antialias=False) and so Keras' image_dataset_from_directory: output pixel
 * (y, x) samples the source at ((y + 0.5) * sh / dh - 0.5, (x + 0.5) * sw / dw - 0.5),
 * clamped to the edge pixels. The same size is an exact copy. */
void dt_image_resize_bilinear(const uint8_t *src, int sh, int sw, int c, float *dst, int dh,
                              int dw);

#endif
