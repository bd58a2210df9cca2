/* Frames of the parameter-server protocol: encoding, decoding with the float payload
 * used in place, validation, and stream reassembly (see ps_frame.h). */
#include "dtrain/ps_frame.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps_range.h"

/* Between frames the reader asks for this much at a time: small frames (PULL,
 * HEARTBEAT) arrive several per read, large ones are read straight to their end. */
enum { READ_CHUNK = 64 * 1024 };

const char *dt_ps_type_name(int type) {
  static const char *const names[] = {NULL,   "HELLO",  "WELCOME",   "INIT", "PUSH",
                                      "PULL", "PARAMS", "HEARTBEAT", "BYE",  "ERROR"};
  return type >= DT_PS_HELLO && type <= DT_PS_ERROR ? names[type] : "unknown type";
}

const char *dt_ps_error_name(int code) {
  static const char *const names[] = {"NONE",         "FRAME_TOO_LARGE",
                                      "UNKNOWN_TYPE", "BAD_MESSAGE",
                                      "BAD_TOKEN",    "BAD_SIGNATURE",
                                      "BAD_SHARD",    "PROTOCOL",
                                      "NOT_INITIALIZED", "TOO_MANY_CONNECTIONS",
                                      "TIMEOUT",      "TRUNCATED",
                                      "BUFFER_LIMIT", "SHUTTING_DOWN",
                                      "REPLACED",     "WORKER_ID_TAKEN"};
  return code >= 0 && code < (int)(sizeof names / sizeof *names) ? names[code] : "unknown code";
}

const ProtobufCMessageDescriptor *dt_ps_descriptor(int type) {
  switch (type) {
    case DT_PS_HELLO: return &dtrain__ps__hello__descriptor;
    case DT_PS_WELCOME: return &dtrain__ps__welcome__descriptor;
    case DT_PS_INIT: return &dtrain__ps__init__descriptor;
    case DT_PS_PUSH: return &dtrain__ps__push__descriptor;
    case DT_PS_PULL: return &dtrain__ps__pull__descriptor;
    case DT_PS_PARAMS: return &dtrain__ps__params__descriptor;
    case DT_PS_HEARTBEAT: return &dtrain__ps__heartbeat__descriptor;
    case DT_PS_BYE: return &dtrain__ps__bye__descriptor;
    case DT_PS_ERROR: return &dtrain__ps__error__descriptor;
    default: return NULL;
  }
}

static bool has_payload(int type) {
  return type == DT_PS_INIT || type == DT_PS_PUSH || type == DT_PS_PARAMS;
}

/* ---- varints ---- */

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* Reads a varint of at most 10 bytes at p[*pos] (< len); false if cut or too long. */
static bool get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 70 && *pos < len; shift += 7) {
    uint8_t b = p[(*pos)++];
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

/* ---- decoding ---- */

static int bad(int *code, dt_error_t *err, int type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(int *code, dt_error_t *err, int type, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  *code = DTRAIN__PS__ERROR_CODE__BAD_MESSAGE;
  return dt_error_set(err, DT_ERR_FORMAT, "bad %s message: %s", dt_ps_type_name(type), what);
}

/* Walks the body's top-level fields: checks that every one is well formed and finds
 * the payload field (at most one), as [fstart, fend) with the data at [dstart, fend). */
static int scan_fields(int type, const uint8_t *b, size_t len, size_t *fstart, size_t *dstart,
                       size_t *fend, int *code, dt_error_t *err) {
  bool found = false;
  size_t pos = 0;
  while (pos < len) {
    size_t start = pos;
    uint64_t tag, v;
    if (!get_varint(b, len, &pos, &tag))
      return bad(code, err, type, "a field tag at byte %zu is cut or too long", start);
    uint64_t field = tag >> 3;
    unsigned wire = (unsigned)(tag & 7);
    if (field == 0 || field > 536870911u)
      return bad(code, err, type, "field number %llu at byte %zu", (unsigned long long)field,
                 start);
    size_t data = pos;
    switch (wire) {
      case 0:
        if (!get_varint(b, len, &pos, &v))
          return bad(code, err, type, "the varint of field %llu at byte %zu is cut",
                     (unsigned long long)field, start);
        break;
      case 1:
      case 5: {
        size_t w = wire == 1 ? 8 : 4;
        if (len - pos < w)
          return bad(code, err, type, "field %llu at byte %zu is cut", (unsigned long long)field,
                     start);
        pos += w;
        break;
      }
      case 2:
        if (!get_varint(b, len, &pos, &v) || v > len - pos)
          return bad(code, err, type, "the length of field %llu at byte %zu runs past the end",
                     (unsigned long long)field, start);
        data = pos;
        pos += (size_t)v;
        break;
      default:
        return bad(code, err, type, "wire type %u of field %llu at byte %zu", wire,
                   (unsigned long long)field, start);
    }
    if (has_payload(type) && field == DT_PS_PAYLOAD_FIELD) {
      if (wire != 2)
        return bad(code, err, type, "the payload field has wire type %u, not bytes", wire);
      if (found) return bad(code, err, type, "the payload field appears twice");
      found = true;
      *fstart = start;
      *dstart = data;
      *fend = pos;
    }
  }
  if (!found) *fstart = *dstart = *fend = len;
  return 0;
}

static bool finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static int check_shard(int type, uint64_t num_params, uint32_t index, uint32_t count, int *code,
                       dt_error_t *err) {
  if (num_params == 0 || num_params >= DT_PS_MAX_PARAMS)
    return bad(code, err, type, "num_params = %llu", (unsigned long long)num_params);
  if (count == 0 || count > DT_PS_MAX_SERVERS || index >= count || count > num_params)
    return bad(code, err, type, "server %u of %u (at most %d servers, one parameter each)", index,
               count, DT_PS_MAX_SERVERS);
  return 0;
}

static int check_init(const Dtrain__Ps__Init *m, size_t npayload, int *code, dt_error_t *err) {
  int rc = check_shard(DT_PS_INIT, m->num_params, m->server_index, m->num_servers, code, err);
  if (rc) return rc;
  if (m->n_tensors == 0 || m->n_tensors > DT_PS_MAX_TENSORS)
    return bad(code, err, DT_PS_INIT, "%zu tensors", m->n_tensors);
  uint64_t pos = 0;
  for (size_t i = 0; i < m->n_tensors; i++) {
    const Dtrain__Ps__Tensor *t = m->tensors[i];
    size_t nlen = strlen(t->name);
    if (nlen == 0 || nlen >= DT_NAME_MAX)
      return bad(code, err, DT_PS_INIT, "tensor %zu: a name of %zu bytes", i, nlen);
    if (t->n_shape == 0 || t->n_shape > DT_MAX_DIMS)
      return bad(code, err, DT_PS_INIT, "tensor '%s' has %zu dimensions", t->name, t->n_shape);
    uint64_t count = 1;
    for (size_t d = 0; d < t->n_shape; d++) {
      if (t->shape[d] == 0 || t->shape[d] > (1u << 30))
        return bad(code, err, DT_PS_INIT, "tensor '%s': dimension %zu is %u", t->name, d,
                   t->shape[d]);
      count *= t->shape[d];
      if (count >= DT_PS_MAX_PARAMS)
        return bad(code, err, DT_PS_INIT, "tensor '%s' is too large", t->name);
    }
    /* Tensors lie in buffer order without overlap: the optimizer's weight-decay walk
     * relies on it. */
    if (count != t->count || t->offset < pos || t->offset > m->num_params ||
        t->count > m->num_params - t->offset)
      return bad(code, err, DT_PS_INIT,
                 "tensor '%s' (offset %llu, count %llu, shape product %llu) does not fit in "
                 "order into %llu parameters",
                 t->name, (unsigned long long)t->offset, (unsigned long long)t->count,
                 (unsigned long long)count, (unsigned long long)m->num_params);
    pos = t->offset + t->count;
  }
  const Dtrain__Ps__Optimizer *o = m->optimizer;
  if (!o) return bad(code, err, DT_PS_INIT, "no optimizer");
  if (o->kind > DT_OPT_ADADELTA || !finite_in(o->momentum, 0.0, 0.999999) ||
      !finite_in(o->beta1, 0.0, 0.999999) || !finite_in(o->beta2, 0.0, 0.999999999) ||
      !finite_in(o->rho, 0.0, 0.999999) || !finite_in(o->epsilon, 0.0, 1.0) ||
      !finite_in(o->weight_decay, 0.0, 1.0))
    return bad(code, err, DT_PS_INIT, "optimizer settings out of range (kind %u)", o->kind);
  uint64_t b, e;
  dt_ps_range(m->num_params, m->num_servers, m->server_index, &b, &e);
  if (npayload != SIZE_MAX && npayload != e - b)
    return bad(code, err, DT_PS_INIT, "%zu parameters for a range of %llu", npayload,
               (unsigned long long)(e - b));
  return 0;
}

int dt_ps_check_init(const Dtrain__Ps__Init *m, size_t npayload, dt_error_t *err) {
  int code;
  return check_init(m, npayload, &code, err);
}

/* Field checks that need no state: what a correct peer can never send. */
static int validate(const dt_ps_msg_t *m, int *code, dt_error_t *err) {
  switch (m->type) {
    case DT_PS_HELLO: {
      const Dtrain__Ps__Hello *h = m->m.hello;
      if (h->token.len > DT_PS_TOKEN_MAX)
        return bad(code, err, m->type, "a token of %zu bytes", h->token.len);
      if (h->clock < 0) return bad(code, err, m->type, "clock %lld", (long long)h->clock);
      if (h->assign_id && (h->num_workers < 1 || h->num_workers > DT_PS_MAX_WORKERS))
        return bad(code, err, m->type, "an id to assign among %u workers", h->num_workers);
      return check_shard(m->type, h->num_params, h->server_index, h->num_servers, code, err);
    }
    case DT_PS_WELCOME: {
      const Dtrain__Ps__Welcome *w = m->m.welcome;
      if ((unsigned)w->consistency > DT_PS_SYNC || w->clock < 0 ||
          !finite_in(w->heartbeat_timeout_s, 0.0, 1e9))
        return bad(code, err, m->type, "consistency %d, clock %lld", (int)w->consistency,
                   (long long)w->clock);
      return 0;
    }
    case DT_PS_INIT: return check_init(m->m.init, m->npayload, code, err);
    case DT_PS_PUSH: {
      const Dtrain__Ps__Push *p = m->m.push;
      if (p->clock < 1 || !isfinite(p->lr) || p->lr < 0.0f || p->steps < 1)
        return bad(code, err, m->type, "clock %lld, lr %g, steps %u", (long long)p->clock,
                   (double)p->lr, p->steps);
      return 0;
    }
    case DT_PS_PULL:
      if (m->m.pull->clock < 0)
        return bad(code, err, m->type, "clock %lld", (long long)m->m.pull->clock);
      return 0;
    case DT_PS_HEARTBEAT:
      if (m->m.heartbeat->clock < 0)
        return bad(code, err, m->type, "clock %lld", (long long)m->m.heartbeat->clock);
      return 0;
    default: return 0;
  }
}

int dt_ps_decode(int type, const uint8_t *body, size_t len, dt_ps_msg_t *out, int *code,
                 dt_error_t *err) {
  memset(out, 0, sizeof *out);
  out->type = type;
  const ProtobufCMessageDescriptor *desc = dt_ps_descriptor(type);
  if (!desc) {
    *code = DTRAIN__PS__ERROR_CODE__UNKNOWN_TYPE;
    return dt_error_set(err, DT_ERR_FORMAT, "unknown message type %d", type);
  }
  size_t fstart = 0, dstart = 0, fend = 0;
  int rc = scan_fields(type, body, len, &fstart, &dstart, &fend, code, err);
  if (rc) return rc;
  size_t plen = fend - dstart;
  if (plen % sizeof(float))
    return bad(code, err, type, "a float payload of %zu bytes (not a multiple of 4)", plen);
  /* protobuf-c parses everything but the payload field. When that field comes last
   * (always, from our encoder) the rest is the prefix; otherwise the two parts are
   * joined in a copy. */
  uint8_t *joined = NULL;
  const uint8_t *meta = body;
  size_t meta_len = fstart;
  if (fend < len) {
    meta_len = fstart + (len - fend);
    joined = malloc(meta_len ? meta_len : 1);
    if (!joined) return dt_error_set(err, DT_ERR_NOMEM, "out of memory decoding a message");
    memcpy(joined, body, fstart);
    memcpy(joined + fstart, body + fend, len - fend);
    meta = joined;
  }
  out->m.base = protobuf_c_message_unpack(desc, NULL, meta_len, meta);
  free(joined);
  if (!out->m.base)
    return bad(code, err, type, "the body (%zu bytes) does not parse as %s", len, desc->name);
  out->npayload = plen / sizeof(float);
  if (out->npayload) {
    const uint8_t *p = body + dstart;
    if ((uintptr_t)p % _Alignof(float) == 0) {
      out->payload = (const float *)(const void *)p;
    } else {
      if (!(out->owned = malloc(plen))) {
        dt_ps_msg_free(out);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a payload of %zu bytes", plen);
      }
      memcpy(out->owned, p, plen);
      out->payload = out->owned;
    }
  }
  if ((rc = validate(out, code, err))) dt_ps_msg_free(out);
  return rc;
}

void dt_ps_msg_free(dt_ps_msg_t *m) {
  if (m->m.base) protobuf_c_message_free_unpacked(m->m.base, NULL);
  free(m->owned);
  memset(m, 0, sizeof *m);
}

/* ---- encoding ---- */

size_t dt_ps_head_bound(const ProtobufCMessage *meta) {
  /* header, message, pad field (2 + 3), payload tag (1) and length (up to 10) */
  return DT_PS_HEADER_BYTES + protobuf_c_message_get_packed_size(meta) + 5 + 1 + 10;
}

size_t dt_ps_encode_head(int type, const ProtobufCMessage *meta, size_t npayload, uint8_t *out) {
  size_t mlen = protobuf_c_message_pack(meta, out + DT_PS_HEADER_BYTES);
  size_t pos = DT_PS_HEADER_BYTES + mlen;
  uint64_t pbytes = (uint64_t)npayload * sizeof(float);
  if (has_payload(type)) {
    size_t vlen = varint_len(pbytes);
    /* pad so that header + message + pad field (2 + p) + tag (1) + length ends on a
     * multiple of 4: then the floats start aligned. */
    size_t p = (4 - (pos + 2 + 1 + vlen) % 4) % 4;
    out[pos++] = (uint8_t)(DT_PS_PAD_FIELD << 3 | 2);
    out[pos++] = (uint8_t)p;
    memset(out + pos, 0, p);
    pos += p;
    out[pos++] = (uint8_t)(DT_PS_PAYLOAD_FIELD << 3 | 2);
    pos += put_varint(out + pos, pbytes);
  } else {
    pbytes = 0;
  }
  uint64_t total = pos - 4 + pbytes;
  if (total > UINT32_MAX) return 0;
  out[0] = (uint8_t)(total >> 24);
  out[1] = (uint8_t)(total >> 16);
  out[2] = (uint8_t)(total >> 8);
  out[3] = (uint8_t)total;
  out[4] = (uint8_t)type;
  return pos;
}

int dt_ps_encode_alloc(int type, const ProtobufCMessage *meta, const float *payload,
                       size_t npayload, uint8_t **out, size_t *len, dt_error_t *err) {
  size_t bound = dt_ps_head_bound(meta);
  if (npayload > (SIZE_MAX - bound) / sizeof(float))
    return dt_error_set(err, DT_ERR_ARG, "a %s frame of %zu floats is too large",
                        dt_ps_type_name(type), npayload);
  uint8_t *buf = malloc(bound + npayload * sizeof(float));
  if (!buf) return dt_error_set(err, DT_ERR_NOMEM, "out of memory encoding a %s frame",
                                dt_ps_type_name(type));
  size_t head = dt_ps_encode_head(type, meta, npayload, buf);
  if (!head) {
    free(buf);
    return dt_error_set(err, DT_ERR_ARG, "a %s frame of %zu floats is longer than 4 GiB",
                        dt_ps_type_name(type), npayload);
  }
  if (has_payload(type) && npayload) memcpy(buf + head, payload, npayload * sizeof(float));
  *out = buf;
  *len = head + (has_payload(type) ? npayload * sizeof(float) : 0);
  return 0;
}

size_t dt_ps_encode_error(int code, uint8_t *buf, size_t cap, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  Dtrain__Ps__Error e = DTRAIN__PS__ERROR__INIT;
  e.code = (Dtrain__Ps__ErrorCode)code;
  e.message = text;
  if (dt_ps_head_bound(&e.base) > cap) text[0] = '\0';
  return dt_ps_encode_head(DT_PS_ERROR, &e.base, 0, buf);
}

/* ---- stream reassembly ---- */

int dt_ps_reader_init(dt_ps_reader_t *r, size_t max_body, dt_error_t *err) {
  memset(r, 0, sizeof *r);
  r->max_body = max_body;
  r->chunk = READ_CHUNK;
  r->cap = READ_CHUNK;
  if (!(r->buf = malloc(r->cap)))
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a receive buffer");
  return 0;
}

void dt_ps_reader_free(dt_ps_reader_t *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Moves the unreturned bytes to the start and makes room for `need` bytes in all. */
static int reserve(dt_ps_reader_t *r, size_t need, dt_error_t *err) {
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  if (need <= r->cap) return 0;
  uint8_t *nb = realloc(r->buf, need);
  if (!nb) return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a frame of %zu bytes", need);
  r->buf = nb;
  r->cap = need;
  return 0;
}

int dt_ps_reader_space(dt_ps_reader_t *r, uint8_t **p, size_t *len, dt_error_t *err) {
  if (r->start == r->end) r->start = r->end = 0;
  size_t have = r->end - r->start;
  int rc;
  if (have >= 4) {
    /* next() has checked the length against max_body already. */
    size_t total = 4 + (size_t)be32(r->buf + r->start);
    if (total > r->chunk && total > have) {
      /* A large frame: start it at buf[0] and read exactly to its end. */
      if ((rc = reserve(r, total, err))) return rc;
      *p = r->buf + r->end;
      *len = total - have;
      return 0;
    }
  }
  if (r->cap - r->end < r->chunk && (rc = reserve(r, have + r->chunk, err))) return rc;
  /* One chunk at most, even when the buffer has grown for an earlier large frame: a
   * large frame must be seen (and moved to buf[0]) before most of it arrives. */
  *p = r->buf + r->end;
  *len = r->chunk;
  return 0;
}

void dt_ps_reader_commit(dt_ps_reader_t *r, size_t n) { r->end += n; }

int dt_ps_reader_next(dt_ps_reader_t *r, int *type, const uint8_t **body, size_t *len, int *code,
                      dt_error_t *err) {
  size_t have = r->end - r->start;
  if (have < 4) return 0;
  const uint8_t *h = r->buf + r->start;
  uint32_t l = be32(h);
  if (l == 0) {
    *code = DTRAIN__PS__ERROR_CODE__BAD_MESSAGE;
    return dt_error_set(err, DT_ERR_FORMAT, "a frame of length 0 (no type byte)");
  }
  if ((size_t)l - 1 > r->max_body) {
    *code = DTRAIN__PS__ERROR_CODE__FRAME_TOO_LARGE;
    return dt_error_set(err, DT_ERR_FORMAT, "a frame of %u bytes, over the limit of %zu "
                        "(ps.max_frame_mb)", l, r->max_body + 1);
  }
  if (have < 5) return 0;
  if (!dt_ps_descriptor(h[4])) {
    *code = DTRAIN__PS__ERROR_CODE__UNKNOWN_TYPE;
    return dt_error_set(err, DT_ERR_FORMAT, "a frame of unknown type %u", h[4]);
  }
  if (have < 4 + (size_t)l) return 0;
  *type = h[4];
  *body = h + DT_PS_HEADER_BYTES;
  *len = (size_t)l - 1;
  r->start += 4 + (size_t)l;
  return 1;
}

size_t dt_ps_reader_pending(const dt_ps_reader_t *r) { return r->end - r->start; }

size_t dt_ps_reader_wants(const dt_ps_reader_t *r) {
  /* What space() would reserve, worked out without moving anything. */
  bool empty = r->start == r->end;
  size_t end = empty ? 0 : r->end, have = empty ? 0 : r->end - r->start;
  size_t need = 0;
  if (have >= 4) {
    size_t total = 4 + (size_t)be32(r->buf + r->start);
    if (total > r->chunk && total > have) need = total;
  }
  if (!need && r->cap - end < r->chunk) need = have + r->chunk;
  return need > r->cap ? need : r->cap;
}

size_t dt_ps_reader_shrink(dt_ps_reader_t *r) {
  if (r->start != r->end || r->cap <= r->chunk) return 0;
  uint8_t *nb = realloc(r->buf, r->chunk);
  if (!nb) return 0;
  size_t freed = r->cap - r->chunk;
  r->buf = nb;
  r->cap = r->chunk;
  r->start = r->end = 0;
  return freed;
}

/* Finds the payload field in the first `avail` bytes of a body of `len` bytes: 1 with
 * its field start and data start when it is there and runs to the body's end, 0
 * otherwise (not yet here, not last, or malformed: the whole-frame path decides). */
static int find_last_payload(const uint8_t *b, size_t avail, size_t len, size_t *fstart,
                             size_t *dstart) {
  size_t pos = 0;
  while (pos < avail) {
    size_t start = pos;
    uint64_t tag, v;
    if (!get_varint(b, avail, &pos, &tag)) return 0;
    uint64_t field = tag >> 3;
    unsigned wire = (unsigned)(tag & 7);
    if (field == DT_PS_PAYLOAD_FIELD) {
      if (wire != 2 || !get_varint(b, avail, &pos, &v) || v != len - pos) return 0;
      *fstart = start;
      *dstart = pos;
      return 1;
    }
    switch (wire) {
      case 0:
        if (!get_varint(b, avail, &pos, &v)) return 0;
        break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2:
        if (!get_varint(b, avail, &pos, &v) || v > avail - pos) return 0;
        pos += (size_t)v;
        break;
      default: return 0;
    }
  }
  return 0;
}

int dt_ps_reader_split_payload(dt_ps_reader_t *r, int type, dt_ps_msg_t *out,
                               const uint8_t **have, size_t *have_len, size_t *payload_len,
                               int *code, dt_error_t *err) {
  size_t held = r->end - r->start;
  if (!has_payload(type) || held < DT_PS_HEADER_BYTES) return 0;
  const uint8_t *h = r->buf + r->start;
  size_t total = 4 + (size_t)be32(h);
  if (h[4] != type || total <= r->chunk || total - 4 - 1 > r->max_body || held >= total) return 0;
  const uint8_t *body = h + DT_PS_HEADER_BYTES;
  size_t len = total - DT_PS_HEADER_BYTES, fstart, dstart;
  if (!find_last_payload(body, held - DT_PS_HEADER_BYTES, len, &fstart, &dstart)) return 0;
  if ((len - dstart) % sizeof(float))
    return bad(code, err, type, "a float payload of %zu bytes (not a multiple of 4)", len - dstart);
  int rc = dt_ps_decode(type, body, fstart, out, code, err);
  if (rc) return rc;
  *payload_len = len - dstart;
  *have = body + dstart;
  *have_len = held - DT_PS_HEADER_BYTES - dstart;
  /* The reader never holds bytes past a large frame's end (see space), so all it
   * holds is this frame's. */
  r->start = r->end;
  return 1;
}

