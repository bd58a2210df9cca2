/* libFuzzer target for the PNG and JPEG decoders (src/io/image.c, png_decode.c,
 * jpeg_decode.c) and what runs on their output (channel conversion, resizing): image
 * folders are user data, and any file in them may be damaged or hostile.
 *
 * Input: byte 0 says what to do with the rest, the file's bytes.
 *   bit 0:    decode the pixels after reading the header (else the header only);
 *   bits 1-2: convert to 1 or 3 channels (0 or 3: keep the file's count);
 *   bits 3-7: the side of the square the pixels are resized to, 1 + this (1..32).
 * The file lives in memory (fmemopen). Checked: an error has its code and a message and
 * leaves no pixels; a decode that succeeds agrees with the header on size and channels;
 * resized values lie in [0, 255]. Nothing may crash, read out of bounds or leak. Images
 * of more than 2^20 pixels are only probed, to keep each input fast. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dtrain/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int mode = data[0];
  FILE *f = fmemopen((void *)(data + 1), size - 1, "rb");
  if (!f) abort();
  dt_error_t err;
  dt_image_info_t probe, info;
  int rc = dt_image_probe(f, "fuzz", &probe, &err);
  if (rc) {
    if (rc != err.code || !err.msg[0]) abort();
    fclose(f);
    return 0;
  }
  if (probe.height < 1 || probe.width < 1 || (probe.channels != 1 && probe.channels != 3) ||
      (uint64_t)probe.height * (uint64_t)probe.width > DT_IMAGE_MAX_PIXELS)
    abort();
  if (!(mode & 1) || (uint64_t)probe.height * (uint64_t)probe.width > ((uint64_t)1 << 20)) {
    fclose(f);
    return 0;
  }
  rewind(f);
  uint8_t *pixels = (uint8_t *)1;
  rc = dt_image_decode(f, "fuzz", &info, &pixels, &err);
  fclose(f);
  if (rc) {
    if (rc != err.code || !err.msg[0] || pixels) abort();
    return 0;
  }
  if (!pixels || info.height != probe.height || info.width != probe.width ||
      info.channels != probe.channels || info.format != probe.format)
    abort();
  int want = (mode >> 1) & 3;
  if (want != 1 && want != 3) want = info.channels;
  size_t n = (size_t)info.height * (size_t)info.width;
  uint8_t *converted = malloc(n * (size_t)want);
  if (!converted) abort();
  dt_image_convert_channels(pixels, info.channels, converted, want, n);
  int side = 1 + (mode >> 3);
  float *out = malloc(sizeof *out * (size_t)side * side * want);
  if (!out) abort();
  dt_image_resize_bilinear(converted, info.height, info.width, want, out, side, side);
  for (size_t i = 0; i < (size_t)side * side * want; i++)
    if (!(out[i] >= 0.0f && out[i] <= 255.0f)) abort();
  free(out);
  free(converted);
  free(pixels);
  return 0;
}
