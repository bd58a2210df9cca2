/* The safetensors format (the layout Hugging Face's safetensors package reads):
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)}
 * with offsets relative to the start of the data, plus an optional "__metadata__"
 * object of string values. We write F32 tensors back to back in the given order and
 * pad the header with spaces to a multiple of 8 so the data stay aligned. */
#include <inttypes.h>
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

int dt_safetensors_encode_parts(const dt_param_info_t *tensors, int n, const float *const *bases,
                                const char *const *meta, void **out, size_t *len,
                                dt_error_t *err) {
  size_t hlen = header_json(tensors, n, meta, NULL, 0);
  if (hlen == 0) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding a safetensors header");
  size_t padded = (hlen + 7) / 8 * 8, data = 0;
  for (int i = 0; i < n; i++) data += tensors[i].count * sizeof(float);
  size_t total = 8 + padded + data;
  unsigned char *f = malloc(total);
  if (!f) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding %zu bytes of tensors", total);
  uint64_t h = padded;
  memcpy(f, &h, 8);
  header_json(tensors, n, meta, (char *)f + 8, hlen + 1);
  memset(f + 8 + hlen, ' ', padded - hlen);
  unsigned char *d = f + 8 + padded;
  for (int i = 0; i < n; i++) {
    memcpy(d, bases[i] + tensors[i].offset, tensors[i].count * sizeof(float));
    d += tensors[i].count * sizeof(float);
  }
  *out = f;
  *len = total;
  return 0;
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

int dt_safetensors_decode_parts(const void *data, size_t len, const dt_param_info_t *tensors,
                                int n, float *const *bases, const char *what, dt_error_t *err) {
  dt_json_t *hdr;
  size_t start = 0;
  int rc = parse_header(data, len, what, &hdr, &start, err);
  if (rc) return rc;
  size_t data_len = len - start;
  /* Which of the model's tensors the file gave: each exactly once. */
  bool *seen = calloc((size_t)(n > 0 ? n : 1), sizeof *seen);
  if (!seen) {
    dt_json_free(hdr);
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory decoding %s", what);
  }
  int found = 0;
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
    memcpy(bases[i] + tensors[i].offset, (const char *)data + start + (size_t)b,
           tensors[i].count * sizeof(float));
    found++;
  }
  for (int i = 0; i < n && !rc; i++)
    if (!seen[i])
      rc = dt_error_set(err, DT_ERR_SHAPE, "%s: tensor '%s' of the model is missing (%d of %d "
                        "found)", what, tensors[i].name, found, n);
  free(seen);
  dt_json_free(hdr);
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
