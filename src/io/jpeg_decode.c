/* JPEG headers and pixels through libjpeg(-turbo), with its errors turned into dt errors.
 *
 * libjpeg's default error manager prints and calls exit(); ours formats the message into
 * the job and longjmps back to read_jpeg instead. Its warnings (corrupt entropy data, a
 * file that ends early, for which libjpeg would fill the rest with gray) are errors too:
 * a damaged sample should stop training, not train on invented pixels. All state that
 * outlives the jump lives in the job, in the caller's frame. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "dtrain/image.h"

typedef struct {
  struct jpeg_error_mgr mgr; /* first, so that cinfo->err points at the job */
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  int rc; /* a dt error code set before a jump of our own (too large, out of memory) */
  struct jpeg_decompress_struct cinfo;
  bool created;
  uint8_t *pixels;
} jpeg_job_t;

static void on_error_exit(j_common_ptr cinfo) {
  jpeg_job_t *job = (jpeg_job_t *)cinfo->err;
  cinfo->err->format_message(cinfo, job->msg);
  longjmp(job->jump, 1);
}

/* Level -1 is a warning (corrupt data that libjpeg would paper over): an error for us.
 * Higher levels are trace messages: dropped. */
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error_exit(cinfo);
}

static void no_output(j_common_ptr cinfo) { (void)cinfo; }

static const char *color_space_name(J_COLOR_SPACE cs) {
  switch (cs) {
    case JCS_CMYK: return "CMYK";
    case JCS_YCCK: return "YCCK";
    default: return "unknown";
  }
}

/* Returns 1 when libjpeg jumped out with an error (job->msg says which, job->rc the code
 * when it was ours), -1 for an image we refuse (err set), else 0. */
static int read_jpeg(jpeg_job_t *job, FILE *f, const char *what, bool decode,
                     dt_image_info_t *info, dt_error_t *err) {
  if (setjmp(job->jump)) return 1;
  struct jpeg_decompress_struct *cinfo = &job->cinfo;
  jpeg_create_decompress(cinfo);
  job->created = true;
  jpeg_stdio_src(cinfo, f);
  jpeg_read_header(cinfo, TRUE);
  int channels;
  if (cinfo->jpeg_color_space == JCS_GRAYSCALE) {
    channels = 1;
  } else if (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB) {
    channels = 3;
  } else {
    job->rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': unsupported JPEG color space %s (%d "
                           "components); only grayscale and color (YCbCr or RGB) JPEGs are "
                           "read", what, color_space_name(cinfo->jpeg_color_space),
                           cinfo->num_components);
    return -1;
  }
  if ((job->rc = dt_image_check_size(what, "JPEG", cinfo->image_width, cinfo->image_height,
                                     err)))
    return -1;
  info->format = DT_IMAGE_JPEG;
  info->width = (int)cinfo->image_width;
  info->height = (int)cinfo->image_height;
  info->channels = channels;
  if (!decode) return 0;

  cinfo->out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_components != channels || cinfo->output_width != cinfo->image_width ||
      cinfo->output_height != cinfo->image_height) {
    job->rc = DT_ERR_FORMAT;
    snprintf(job->msg, sizeof job->msg, "unexpected output layout");
    return 1;
  }
  size_t row_bytes = (size_t)cinfo->output_width * (size_t)channels;
  job->pixels = malloc(row_bytes * cinfo->output_height);
  if (!job->pixels) {
    job->rc = DT_ERR_NOMEM;
    snprintf(job->msg, sizeof job->msg, "out of memory for the pixels");
    return 1;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = job->pixels + (size_t)cinfo->output_scanline * row_bytes;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return 0;
}

int dt_image_jpeg_read(FILE *f, const char *what, bool decode, dt_image_info_t *info,
                 uint8_t **pixels, dt_error_t *err) {
  jpeg_job_t *job = calloc(1, sizeof *job);
  if (!job) return dt_error_set(err, DT_ERR_NOMEM, "'%s': cannot set up libjpeg", what);
  job->cinfo.err = jpeg_std_error(&job->mgr);
  job->mgr.error_exit = on_error_exit;
  job->mgr.emit_message = on_message;
  job->mgr.output_message = no_output;
  int rc = DT_OK;
  int status = read_jpeg(job, f, what, decode, info, err);
  if (status > 0 && job->rc == DT_ERR_NOMEM)
    rc = dt_error_set(err, DT_ERR_NOMEM, "'%s': %s", what, job->msg);
  else if (status > 0)
    rc = dt_error_set(err, DT_ERR_FORMAT, "'%s': corrupt JPEG: %s", what, job->msg);
  else if (status < 0)
    rc = job->rc;
  if (job->created) jpeg_destroy_decompress(&job->cinfo);
  if (rc == DT_OK && decode) *pixels = job->pixels;
  else free(job->pixels);
  free(job);
  return rc;
}
