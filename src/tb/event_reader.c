/* Reading TensorBoard event files: a record iterator that checks both CRCs of every
 * TFRecord and decodes the Event, and the one-line-per-event dumper behind
 * `dtrain-worker --events FILE`. Errors name the file and the byte offset of the bad
 * record, so a damaged file can be inspected (or cut) at that point. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtrain/crc32c.h"
#include "dtrain/events.h"
#include "events_internal.h"
#include "tensorboard_event.pb-c.h"

struct dt_events_reader {
  FILE *f;
  char *path;
  uint64_t offset; /* of the next record */
  uint8_t *buf;    /* the current record's data and footer */
  size_t cap;
  Dtrain__Tb__Event *msg; /* the current record, decoded */
  dt_event_value_t *values;
  size_t values_cap;
  dt_event_t event;
  dt_error_t sticky; /* once a record is bad, every later call reports it again */
};

static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int dt_events_reader_open(dt_events_reader_t **out, const char *path, dt_error_t *err) {
  if (!out || !path) return dt_error_set(err, DT_ERR_ARG, "events reader: no path given");
  *out = NULL;
  dt_events_reader_t *r = calloc(1, sizeof *r);
  if (!r) return dt_error_set(err, DT_ERR_NOMEM, "events reader: out of memory");
  r->path = strdup(path);
  r->f = fopen(path, "rb");
  if (!r->path || !r->f) {
    int rc = r->path ? dt_error_set(err, DT_ERR_IO, "cannot open event file %s: %s", path,
                                    strerror(errno))
                     : dt_error_set(err, DT_ERR_NOMEM, "events reader: out of memory");
    dt_events_reader_close(r);
    return rc;
  }
  *out = r;
  return DT_OK;
}

void dt_events_reader_close(dt_events_reader_t *r) {
  if (!r) return;
  if (r->msg) dtrain__tb__event__free_unpacked(r->msg, NULL);
  if (r->f) fclose(r->f);
  free(r->values);
  free(r->buf);
  free(r->path);
  free(r);
}

static int fail(dt_events_reader_t *r, dt_error_t *err, int code, const char *what,
                uint64_t offset) {
  dt_error_set(&r->sticky, code, "event file %s: %s at byte offset %llu", r->path, what,
               (unsigned long long)offset);
  return dt_error_set(err, code, "%s", r->sticky.msg);
}

/* Bytes of the file from the current position on; the file may still be growing. */
static uint64_t bytes_left(dt_events_reader_t *r, uint64_t pos) {
  struct stat st;
  if (fstat(fileno(r->f), &st) != 0 || (uint64_t)st.st_size < pos) return 0;
  return (uint64_t)st.st_size - pos;
}

static void fill_value(dt_event_value_t *v, const Dtrain__Tb__Summary__Value *pv) {
  *v = (dt_event_value_t){.tag = pv->tag, .kind = DT_EVENT_OTHER};
  switch (pv->value_case) {
    case DTRAIN__TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE:
      v->kind = DT_EVENT_SCALAR;
      v->scalar = pv->simple_value;
      break;
    case DTRAIN__TB__SUMMARY__VALUE__VALUE_HISTO: {
      const Dtrain__Tb__HistogramProto *h = pv->histo;
      v->kind = DT_EVENT_HISTOGRAM;
      v->num = h->num;
      v->min = h->min;
      v->max = h->max;
      v->sum = h->sum;
      v->sum_squares = h->sum_squares;
      v->nbuckets = h->n_bucket < h->n_bucket_limit ? h->n_bucket : h->n_bucket_limit;
      v->bucket_limit = h->bucket_limit;
      v->bucket = h->bucket;
      break;
    }
    case DTRAIN__TB__SUMMARY__VALUE__VALUE_IMAGE:
      v->kind = DT_EVENT_IMAGE;
      v->height = pv->image->height;
      v->width = pv->image->width;
      v->channels = pv->image->colorspace;
      v->png = pv->image->encoded_image_string.data;
      v->png_len = pv->image->encoded_image_string.len;
      break;
    case DTRAIN__TB__SUMMARY__VALUE__VALUE_TENSOR: {
      const Dtrain__Tb__TensorProto *t = pv->tensor;
      const Dtrain__Tb__SummaryMetadata *m = pv->metadata;
      if (m && m->plugin_data && strcmp(m->plugin_data->plugin_name, "text") == 0 &&
          t->dtype == DTRAIN__TB__DATA_TYPE__DT_STRING && t->n_string_val > 0) {
        v->kind = DT_EVENT_TEXT;
        v->text = (const char *)t->string_val[0].data;
        v->text_len = t->string_val[0].len;
      }
      break;
    }
    default:
      break;
  }
}

int dt_events_reader_next(dt_events_reader_t *r, const dt_event_t **event, dt_error_t *err) {
  if (!r || !event) return dt_error_set(err, DT_ERR_ARG, "events reader: bad arguments");
  *event = NULL;
  if (r->sticky.code) return dt_error_set(err, r->sticky.code, "%s", r->sticky.msg);
  if (r->msg) {
    dtrain__tb__event__free_unpacked(r->msg, NULL);
    r->msg = NULL;
  }
  uint64_t at = r->offset;
  char what[160];

  uint8_t header[DT_TFRECORD_HEADER];
  size_t got = fread(header, 1, sizeof header, r->f);
  if (got < sizeof header) {
    if (ferror(r->f)) return fail(r, err, DT_ERR_IO, strerror(errno), at);
    if (got == 0) return 0;
    snprintf(what, sizeof what, "truncated record (%zu of %d header bytes)", got,
             DT_TFRECORD_HEADER);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  uint64_t len = get_le64(header);
  uint32_t stored = get_le32(header + 8), computed = dt_crc32c_mask(dt_crc32c(0, header, 8));
  if (stored != computed) {
    snprintf(what, sizeof what,
             "corrupt record (length CRC 0x%08x, expected 0x%08x)", stored, computed);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  uint64_t left = bytes_left(r, at + DT_TFRECORD_HEADER);
  if (len > left || left - len < DT_TFRECORD_FOOTER) {
    snprintf(what, sizeof what, "truncated record (%llu data bytes + 4 CRC bytes, %llu left)",
             (unsigned long long)len, (unsigned long long)left);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  size_t need = (size_t)len + DT_TFRECORD_FOOTER;
  if (need > r->cap) {
    uint8_t *p = realloc(r->buf, need);
    if (!p) return fail(r, err, DT_ERR_NOMEM, "out of memory for record", at);
    r->buf = p;
    r->cap = need;
  }
  got = fread(r->buf, 1, need, r->f);
  if (got < need) {
    if (ferror(r->f)) return fail(r, err, DT_ERR_IO, strerror(errno), at);
    snprintf(what, sizeof what, "truncated record (%zu of %zu bytes after the header)", got,
             need);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  stored = get_le32(r->buf + len);
  computed = dt_crc32c_mask(dt_crc32c(0, r->buf, (size_t)len));
  if (stored != computed) {
    snprintf(what, sizeof what, "corrupt record (data CRC 0x%08x, expected 0x%08x)", stored,
             computed);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  r->msg = dtrain__tb__event__unpack(NULL, (size_t)len, r->buf);
  if (!r->msg) {
    snprintf(what, sizeof what, "record of %llu bytes is not a valid Event",
             (unsigned long long)len);
    return fail(r, err, DT_ERR_FORMAT, what, at);
  }
  r->offset = at + DT_TFRECORD_HEADER + need;

  const Dtrain__Tb__Event *m = r->msg;
  size_t nv = m->what_case == DTRAIN__TB__EVENT__WHAT_SUMMARY ? m->summary->n_value : 0;
  if (nv > r->values_cap) {
    dt_event_value_t *p = realloc(r->values, nv * sizeof *p);
    if (!p) return fail(r, err, DT_ERR_NOMEM, "out of memory for summary values", at);
    r->values = p;
    r->values_cap = nv;
  }
  for (size_t i = 0; i < nv; i++) fill_value(&r->values[i], m->summary->value[i]);
  r->event = (dt_event_t){
      .offset = at,
      .wall_time = m->wall_time,
      .step = m->step,
      .file_version = m->what_case == DTRAIN__TB__EVENT__WHAT_FILE_VERSION ? m->file_version
                                                                            : NULL,
      .nvalues = nv,
      .values = r->values,
  };
  *event = &r->event;
  return 1;
}

/* Prints text quoted on one line, escaping what would break the line; long texts are
 * cut after 200 bytes. */
static void print_text(FILE *out, const char *s, size_t n) {
  size_t shown = n > 200 ? 200 : n;
  fputc('"', out);
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n')
      fputs("\\n", out);
    else if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
  if (shown < n) fprintf(out, "... (%zu bytes)", n);
}

int dt_events_dump(FILE *out, const char *path, dt_error_t *err) {
  dt_events_reader_t *r;
  int rc = dt_events_reader_open(&r, path, err);
  if (rc) return rc;
  const dt_event_t *e;
  while ((rc = dt_events_reader_next(r, &e, err)) == 1) {
    fprintf(out, "offset=%llu wall_time=%.6f step=%lld", (unsigned long long)e->offset,
            e->wall_time, (long long)e->step);
    if (e->file_version) fprintf(out, " file_version=%s", e->file_version);
    for (size_t i = 0; i < e->nvalues; i++) {
      const dt_event_value_t *v = &e->values[i];
      fprintf(out, " | %s", v->tag);
      switch (v->kind) {
        case DT_EVENT_SCALAR:
          fprintf(out, " scalar=%.9g", v->scalar);
          break;
        case DT_EVENT_HISTOGRAM:
          fprintf(out, " histogram num=%.0f min=%.9g max=%.9g buckets=%zu", v->num, v->min,
                  v->max, v->nbuckets);
          break;
        case DT_EVENT_IMAGE:
          fprintf(out, " image=%dx%dx%d (%zu-byte PNG)", v->width, v->height, v->channels,
                  v->png_len);
          break;
        case DT_EVENT_TEXT:
          fputs(" text=", out);
          print_text(out, v->text, v->text_len);
          break;
        case DT_EVENT_OTHER:
          fputs(" (other)", out);
          break;
      }
    }
    fputc('\n', out);
  }
  dt_events_reader_close(r);
  return rc;
}
