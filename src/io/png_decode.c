/* PNG headers and pixels through libpng, with libpng's errors turned into dt errors.
 *
 * libpng reports a fatal error by calling our handler, which must not return: it records
 * the message in the job and longjmps back to read_png, whose caller then releases
 * everything. All state that outlives the jump lives in the job (in the caller's frame),
 * not in read_png's locals, so nothing is clobbered by longjmp. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/image.h"

typedef struct {
  FILE *f;
  char msg[256];
  png_structp png;
  png_infop info;
  uint8_t *pixels;
  png_bytep *rows;
  int rc; /* a dt error code set before a jump of our own (too large, out of memory) */
} png_job_t;

static void on_error(png_structp png, png_const_charp msg) {
  png_job_t *job = png_get_error_ptr(png);
  snprintf(job->msg, sizeof job->msg, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

/* Warnings are about ancillary chunks (a questionable color profile, a bad text chunk)
 * that do not change the pixels: ignored, never printed. */
static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Our own read function instead of png_init_io, so that a short file says so plainly
 * (libpng's stdio reader says only "Read Error"). */
static void read_bytes(png_structp png, png_bytep out, size_t len) {
  png_job_t *job = png_get_io_ptr(png);
  if (fread(out, 1, len, job->f) != len)
    png_error(png, ferror(job->f) ? "read failed" : "the file ends early (truncated)");
}

/* The channel count after the transforms decode_png sets up. */
static int channels_of(int color_type) {
  return (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
}

/* Returns 1 when libpng jumped out with an error (job->msg says which, job->rc the code
 * when it was ours), -1 when the image is too large (err set), else 0. */
static int read_png(png_job_t *job, const char *what, bool decode, dt_image_info_t *info,
                    dt_error_t *err) {
  if (setjmp(png_jmpbuf(job->png))) return 1;
  png_set_read_fn(job->png, job, read_bytes);
  png_read_info(job->png, job->info);
  png_uint_32 width = png_get_image_width(job->png, job->info);
  png_uint_32 height = png_get_image_height(job->png, job->info);
  int color_type = png_get_color_type(job->png, job->info);
  if ((job->rc = dt_image_check_size(what, "PNG", width, height, err))) return -1;
  info->format = DT_IMAGE_PNG;
  info->width = (int)width;
  info->height = (int)height;
  info->channels = channels_of(color_type);
  if (!decode) return 0;

  /* Everything to 8-bit gray or RGB: palettes expanded (a tRNS chunk is not turned into
   * alpha, so transparency is dropped with it), low bit depths widened, 16-bit samples
   * cut to their high byte, alpha stripped. */
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(job->png, job->info) < 8)
    png_set_expand_gray_1_2_4_to_8(job->png);
  png_set_strip_16(job->png);
  png_set_strip_alpha(job->png);
  png_set_interlace_handling(job->png);
  png_read_update_info(job->png, job->info);
  size_t row_bytes = (size_t)width * (size_t)info->channels;
  if (png_get_rowbytes(job->png, job->info) != row_bytes ||
      png_get_bit_depth(job->png, job->info) != 8 ||
      png_get_channels(job->png, job->info) != info->channels)
    png_error(job->png, "unexpected pixel layout after conversion to 8-bit gray/RGB");

  job->pixels = malloc(row_bytes * height);
  job->rows = malloc(sizeof *job->rows * height);
  if (!job->pixels || !job->rows) {
    job->rc = DT_ERR_NOMEM;
    png_error(job->png, "out of memory for the pixels");
  }
  for (png_uint_32 y = 0; y < height; y++) job->rows[y] = job->pixels + (size_t)y * row_bytes;
  png_read_image(job->png, job->rows);
  /* Reading to IEND checks the rest of the file too (a cut or damaged tail is an error,
   * not a silently accepted image). */
  png_read_end(job->png, NULL);
  return 0;
}

int dt_image_png_read(FILE *f, const char *what, bool decode, dt_image_info_t *info, uint8_t **pixels,
                dt_error_t *err) {
  png_job_t job;
  memset(&job, 0, sizeof job);
  job.f = f;
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
  if (!job.png) return dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot set up libpng", what);
  job.info = png_create_info_struct(job.png);
  int rc = DT_OK;
  if (!job.info) {
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot set up libpng", what);
  } else {
    int status = read_png(&job, what, decode, info, err);
    if (status > 0 && job.rc == DT_ERR_NOMEM)
      rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': %s", what, job.msg);
    else if (status > 0)
      rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt PNG: %s", what, job.msg);
    else if (status < 0)
      rc = job.rc;
  }
  png_destroy_read_struct(&job.png, job.info ? &job.info : NULL, NULL);
  free(job.rows);
  if (rc == DT_OK && decode) *pixels = job.pixels;
  else free(job.pixels);
  return rc;
}
