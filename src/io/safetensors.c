/* The safetensors format (the layout Hugging Face's safetensors package reads):
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)}
 * with offsets relative to the start of the data, plus an optional "__metadata__"
 * object of string values. We write F32 tensors back to back in the given order and
 * pad the header with spaces to a multiple of 8 so the data stay aligned. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "dtrain/json.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data are little-endian; a big-endian host needs byte swaps here");

/* Headers of real models stay far below this; a larger claim is a corrupt file. */
enum { HEADER_MAX = 64 << 20 };

/* snprintf-style append that keeps counting once the buffer is full. */
static void put(char *buf, size_t cap, size_t *n, const char *s) {
  size_t l = strlen(s);
  if (*n < cap) memcpy(buf + *n, s, *n + l < cap ? l : cap - *n);
  *n += l;
}

/* The header JSON into buf (cap bytes); returns its length (0: out of memory). */
static size_t header_json(const dt_param_info_t *t, int nt, const char *const *meta, char *buf,
                          size_t cap) {
  size_t n = 0, offset = 0;
  char tmp[1024];
  put(buf, cap, &n, "{");
  if (meta && meta[0]) {
    put(buf, cap, &n, "\"__metadata__\":{");
    for (int i = 0; meta[i] && meta[i + 1]; i += 2) {
      if (i) put(buf, cap, &n, ",");
      size_t kq = dt_json_quote(meta[i], NULL, 0) + 1, vq = dt_json_quote(meta[i + 1], NULL, 0) + 1;
      char *q = malloc(kq > vq ? kq : vq);
      if (!q) return 0;
      dt_json_quote(meta[i], q, kq);
      put(buf, cap, &n, q);
      put(buf, cap, &n, ":");
      dt_json_quote(meta[i + 1], q, vq);
      put(buf, cap, &n, q);
      free(q);
    }
    put(buf, cap, &n, "}");
  }
  for (int i = 0; i < nt; i++) {
    char name[DT_NAME_MAX * 2 + 4];
    dt_json_quote(t[i].name, name, sizeof name);
    size_t used = (size_t)snprintf(tmp, sizeof tmp, "%s%s:{\"dtype\":\"F32\",\"shape\":[",
                                   (meta && meta[0]) || i ? "," : "", name);
    for (int d = 0; d < t[i].shape.ndim; d++)
      used += (size_t)snprintf(tmp + used, sizeof tmp - used, d ? ",%d" : "%d",
                               t[i].shape.dims[d]);
    size_t bytes = t[i].count * sizeof(float);
    snprintf(tmp + used, sizeof tmp - used, "],\"data_offsets\":[%zu,%zu]}", offset,
             offset + bytes);
    offset += bytes;
    put(buf, cap, &n, tmp);
  }
  put(buf, cap, &n, "}");
  return n;
}

int dt_safetensors_head(const dt_param_info_t *tensors, int n, const char *const *meta, void **out,
                        size_t *len, dt_error_t *err) {
  size_t hlen = header_json(tensors, n, meta, NULL, 0);
  if (hlen == 0) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding a safetensors header");
  size_t padded = (hlen + 7) / 8 * 8;
  unsigned char *f = malloc(8 + padded + 1);
  if (!f) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding a safetensors header");
  uint64_t h = padded;
  memcpy(f, &h, 8);
  header_json(tensors, n, meta, (char *)f + 8, hlen + 1);
  memset(f + 8 + hlen, ' ', padded - hlen);
  *out = f;
  *len = 8 + padded;
  return 0;
}

int dt_safetensors_encode_parts(const dt_param_info_t *tensors, int n, const float *const *bases,
                                const char *const *meta, void **out, size_t *len,
                                dt_error_t *err) {
  void *head;
  size_t head_len, data = 0;
  int rc = dt_safetensors_head(tensors, n, meta, &head, &head_len, err);
  if (rc) return rc;
  for (int i = 0; i < n; i++) data += tensors[i].count * sizeof(float);
  size_t total = head_len + data;
  unsigned char *f = realloc(head, total);
  if (!f) {
    free(head);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding %zu bytes of tensors", total);
  }
  unsigned char *d = f + head_len;
  for (int i = 0; i < n; i++) {
    memcpy(d, bases[i] + tensors[i].offset, tensors[i].count * sizeof(float));
    d += tensors[i].count * sizeof(float);
  }
  *out = f;
  *len = total;
  return 0;
}

/* The file's pieces (header, then the tensors' memory), written into DIR/FILE as a
 * standalone fsync'd file, or with w into w's checkpoint (fsync'd at its commit). */
static int write_st(dt_ckpt_writer_t *w, const char *dir, const char *file,
                    const dt_param_info_t *tensors, int n, const float *const *bases,
                    const char *const *meta, uint64_t *size, uint32_t *crc, dt_error_t *err) {
  void *head;
  size_t head_len;
  int rc = dt_safetensors_head(tensors, n, meta, &head, &head_len, err);
  if (rc) return rc;
  dt_ckpt_piece_t *pieces = malloc(sizeof *pieces * ((size_t)n + 1));
  if (!pieces) {
    free(head);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing %s/%s", dir, file);
  }
  int np = 0;
  pieces[np++] = (dt_ckpt_piece_t){head, head_len};
  for (int i = 0; i < n; i++) {
    const char *p = (const char *)(bases[i] + tensors[i].offset);
    size_t bytes = tensors[i].count * sizeof(float);
    /* Tensors that follow each other in memory (a model's parameters do) go out in one
     * piece: fewer, larger writes. */
    if (np > 1 && (const char *)pieces[np - 1].data + pieces[np - 1].len == p)
      pieces[np - 1].len += bytes;
    else
      pieces[np++] = (dt_ckpt_piece_t){p, bytes};
  }
  rc = w ? dt_ckpt_add_pieces(w, file, pieces, np, size, err)
         : dt_ckpt_write_pieces(dir, file, pieces, np, size, crc, err);
  free(pieces);
  free(head);
  return rc;
}

int dt_safetensors_write(const char *dir, const char *file, const dt_param_info_t *tensors, int n,
                         const float *const *bases, const char *const *meta, uint64_t *size,
                         uint32_t *crc, dt_error_t *err) {
  return write_st(NULL, dir, file, tensors, n, bases, meta, size, crc, err);
}

int dt_ckpt_add_safetensors(dt_ckpt_writer_t *w, const char *file, const dt_param_info_t *tensors,
                            int n, const float *const *bases, const char *const *meta,
                            uint64_t *size, dt_error_t *err) {
  return write_st(w, dt_ckpt_tmp_dir(w), file, tensors, n, bases, meta, size, NULL, err);
}

/* Parses the header of a safetensors file; *data_start is where the data begin. */
static int parse_header(const void *data, size_t len, const char *what, dt_json_t **hdr,
                        size_t *data_start, dt_error_t *err) {
  uint64_t h;
  if (len < 8) return dt_error_set(err, DT_ERR_FORMAT, "%s: %zu bytes, too short for safetensors", what, len);
  memcpy(&h, data, 8);
  if (h > HEADER_MAX || h > len - 8)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: header length %" PRIu64 " does not fit the %zu-byte "
                        "file (truncated or not safetensors)", what, h, len);
  int rc = dt_json_parse((const char *)data + 8, (size_t)h, what, hdr, err);
  if (rc) return rc;
  if ((*hdr)->type != DT_JSON_OBJECT) {
    dt_json_free(*hdr);
    return dt_error_set(err, DT_ERR_FORMAT, "%s: the header is not a JSON object", what);
  }
  *data_start = 8 + (size_t)h;
  return 0;
}

/* Checks a parsed header against the model's tensors (each present exactly once,
 * F32, the same shape, whole-byte offsets of the right length inside the data_len data
 * bytes, nothing else but __metadata__) and puts tensor i's first data byte into
 * begin[i]. Writes nothing else. */
static int check_tensors(const dt_json_t *hdr, size_t data_len, const dt_param_info_t *tensors,
                         int n, size_t *begin, const char *what, dt_error_t *err) {
  /* Which of the model's tensors the file gave: each exactly once. */
  bool *seen = calloc((size_t)(n > 0 ? n : 1), sizeof *seen);
  if (!seen) return dt_error_set(err, DT_ERR_NOMEM, "out of memory decoding %s", what);
  int found = 0, rc = 0;
  for (const dt_json_t *e = hdr->child; e && !rc; e = e->next) {
    if (strcmp(e->key, "__metadata__") == 0) continue;
    int i = 0;
    while (i < n && strcmp(tensors[i].name, e->key) != 0) i++;
    if (i == n) {
      rc = dt_error_set(err, DT_ERR_SHAPE, "%s: holds tensor '%s', which this model does not have "
                        "(a checkpoint of a different model?)", what, e->key);
      break;
    }
    if (seen[i]) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s: tensor '%s' appears twice", what, e->key);
      break;
    }
    seen[i] = true;
    const dt_json_t *dtype = dt_json_get_typed(e, "dtype", DT_JSON_STRING);
    const dt_json_t *shape = dt_json_get_typed(e, "shape", DT_JSON_ARRAY);
    const dt_json_t *offs = dt_json_get_typed(e, "data_offsets", DT_JSON_ARRAY);
    if (!dtype || !shape || !offs || offs->count != 2 ||
        offs->child->type != DT_JSON_NUMBER || offs->child->next->type != DT_JSON_NUMBER) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets",
                        what, e->key);
      break;
    }
    if (strcmp(dtype->string, "F32") != 0) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", what, e->key,
                        dtype->string);
      break;
    }
    bool same = shape->count == tensors[i].shape.ndim;
    int d = 0;
    for (const dt_json_t *s = shape->child; s && same; s = s->next, d++)
      same = s->type == DT_JSON_NUMBER && s->number == tensors[i].shape.dims[d];
    if (!same) {
      char want[64];
      rc = dt_error_set(err, DT_ERR_SHAPE, "%s: tensor '%s' has another shape than the model's %s",
                        what, e->key, dt_shape_str(&tensors[i].shape, want, sizeof want));
      break;
    }
    /* Offsets are whole byte counts: [23.5, 35.5) must not read from byte 23. They are
     * range-checked first, so that converting them to size_t is defined. */
    double b = offs->child->number, en = offs->child->next->number;
    if (!(b >= 0 && en >= b && en <= (double)data_len) || b != (double)(size_t)b ||
        en != (double)(size_t)en || (size_t)en - (size_t)b != tensors[i].count * sizeof(float)) {
      rc = dt_error_set(err, DT_ERR_FORMAT, "%s: tensor '%s' has data offsets [%.15g, %.15g) that do "
                        "not fit its shape or the %zu data bytes", what, e->key, b, en, data_len);
      break;
    }
    begin[i] = (size_t)b;
    found++;
  }
  for (int i = 0; i < n && !rc; i++)
    if (!seen[i])
      rc = dt_error_set(err, DT_ERR_SHAPE, "%s: tensor '%s' of the model is missing (%d of %d "
                        "found)", what, tensors[i].name, found, n);
  free(seen);
  return rc;
}

int dt_safetensors_decode_parts(const void *data, size_t len, const dt_param_info_t *tensors,
                                int n, float *const *bases, const char *what, dt_error_t *err) {
  dt_json_t *hdr;
  size_t start = 0;
  int rc = parse_header(data, len, what, &hdr, &start, err);
  if (rc) return rc;
  size_t *begin = malloc(sizeof *begin * (size_t)(n > 0 ? n : 1));
  if (!begin) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory decoding %s", what);
  if (!rc) rc = check_tensors(hdr, len - start, tensors, n, begin, what, err);
  for (int i = 0; i < n && !rc; i++)
    memcpy(bases[i] + tensors[i].offset, (const char *)data + start + begin[i],
           tensors[i].count * sizeof(float));
  free(begin);
  dt_json_free(hdr);
  return rc;
}

int dt_safetensors_read_head(dt_ckpt_in_t *in, const char *what, void **head, size_t *head_len,
                             dt_error_t *err) {
  *head = NULL;
  *head_len = 0;
  uint64_t size = dt_ckpt_in_size(in), h;
  if (size < 8)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: %" PRIu64 " bytes, too short for safetensors",
                        what, size);
  int rc = dt_ckpt_in_read(in, &h, 8, err);
  if (rc) return rc;
  if (h > HEADER_MAX || h > size - 8)
    return dt_error_set(err, DT_ERR_FORMAT, "%s: header length %" PRIu64 " does not fit the %" PRIu64
                        "-byte file (truncated or not safetensors)", what, h, size);
  char *buf = malloc(8 + (size_t)h);
  if (!buf) return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s", what);
  memcpy(buf, &h, 8);
  if ((rc = dt_ckpt_in_read(in, buf + 8, (size_t)h, err))) {
    free(buf);
    return rc;
  }
  /* Parsed once here so that a malformed header is reported before anything else. */
  dt_json_t *hdr;
  size_t start;
  if ((rc = parse_header(buf, 8 + (size_t)h, what, &hdr, &start, err))) {
    free(buf);
    return rc;
  }
  dt_json_free(hdr);
  *head = buf;
  *head_len = 8 + (size_t)h;
  return 0;
}

typedef struct {
  size_t begin;
  int i;
} span_t;

static int by_begin(const void *a, const void *b) {
  const span_t *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->i - y->i;
}

int dt_safetensors_read_data(dt_ckpt_in_t *in, const void *head, size_t head_len,
                             const dt_param_info_t *tensors, int n, float *const *bases,
                             const char *what, dt_error_t *err) {
  if (dt_ckpt_in_offset(in) != head_len)
    return dt_error_set(err, DT_ERR_STATE, "%s: the data are read right after the head", what);
  dt_json_t *hdr;
  size_t start = 0;
  int rc = parse_header(head, head_len, what, &hdr, &start, err);
  if (rc) return rc;
  size_t data_len = (size_t)(dt_ckpt_in_size(in) - head_len);
  size_t *begin = malloc(sizeof *begin * (size_t)(n > 0 ? n : 1));
  span_t *order = malloc(sizeof *order * (size_t)(n > 0 ? n : 1));
  if (!begin || !order) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s", what);
  if (!rc) rc = check_tensors(hdr, data_len, tensors, n, begin, what, err);
  dt_json_free(hdr);
  bool overlap = false;
  if (!rc) {
    for (int i = 0; i < n; i++) order[i] = (span_t){begin[i], i};
    qsort(order, (size_t)n, sizeof *order, by_begin);
    for (int k = 1; k < n; k++)
      if (order[k].begin < order[k - 1].begin + tensors[order[k - 1].i].count * sizeof(float))
        overlap = true;
  }
  if (!rc && !overlap) {
    /* The usual layout (ours): tensors one after another, each read into its place. */
    size_t pos = 0;
    for (int k = 0; k < n && !rc; k++) {
      int i = order[k].i;
      size_t bytes = tensors[i].count * sizeof(float);
      if (order[k].begin > pos) rc = dt_ckpt_in_read(in, NULL, order[k].begin - pos, err);
      if (!rc) rc = dt_ckpt_in_read(in, bases[i] + tensors[i].offset, bytes, err);
      pos = order[k].begin + bytes;
    }
  } else if (!rc) {
    /* Tensors that share bytes (no writer we know makes them, but the format allows
     * them): all the data into scratch memory, then copied out. */
    char *data = malloc(data_len ? data_len : 1);
    if (!data) rc = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading %s", what);
    if (!rc) rc = dt_ckpt_in_read(in, data, data_len, err);
    for (int i = 0; i < n && !rc; i++)
      memcpy(bases[i] + tensors[i].offset, data + begin[i], tensors[i].count * sizeof(float));
    free(data);
  }
  free(begin);
  free(order);
  return rc;
}

/* The single-buffer forms: every tensor's offset is into the same buffer. */
int dt_safetensors_encode(const dt_param_info_t *tensors, int n, const float *buf,
                          const char *const *meta, void **out, size_t *len, dt_error_t *err) {
  const float **bases = malloc(sizeof *bases * (size_t)(n > 0 ? n : 1));
  if (!bases) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding tensors");
  for (int i = 0; i < n; i++) bases[i] = buf;
  int rc = dt_safetensors_encode_parts(tensors, n, bases, meta, out, len, err);
  free(bases);
  return rc;
}

int dt_safetensors_decode(const void *data, size_t len, const dt_param_info_t *tensors, int n,
                          float *buf, const char *what, dt_error_t *err) {
  float **bases = malloc(sizeof *bases * (size_t)(n > 0 ? n : 1));
  if (!bases) return dt_error_set(err, DT_ERR_NOMEM, "out of memory decoding tensors");
  for (int i = 0; i < n; i++) bases[i] = buf;
  int rc = dt_safetensors_decode_parts(data, len, tensors, n, bases, what, err);
  free(bases);
  return rc;
}

int dt_safetensors_metadata(const void *data, size_t len, const char *key, char *val, size_t cap,
                            dt_error_t *err) {
  dt_json_t *hdr;
  size_t start = 0;
  int rc = parse_header(data, len, "safetensors", &hdr, &start, err);
  if (rc) return rc;
  const dt_json_t *meta = dt_json_get_typed(hdr, "__metadata__", DT_JSON_OBJECT);
  const dt_json_t *v = dt_json_get_typed(meta, key, DT_JSON_STRING);
  if (!v) rc = dt_error_set(err, DT_ERR_NOT_FOUND, "no __metadata__ \"%s\"", key);
  else snprintf(val, cap, "%s", v->string);
  dt_json_free(hdr);
  return rc;
}
