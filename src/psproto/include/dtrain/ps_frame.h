/* The parameter-server wire format (proto/ps.proto): frames, float payloads used in
 * place, validation of every message, and a reassembler that turns a byte stream into
 * frames. The server, the worker's client and the fuzz target all go through this
 * file, so they accept and reject exactly the same bytes.
 *
 * Frame: 4-byte big-endian length L of the rest, 1 type byte, L-1 bytes of protobuf
 * body. The float payload of INIT/PUSH/PARAMS (field 15) is found by a scan of the
 * body's top-level fields and handed out as a pointer into the received bytes when it
 * is 4-byte aligned (our encoder makes it so), or as an aligned copy otherwise; the
 * other fields are unpacked by protobuf-c. Floats travel little-endian. */
#ifndef DTRAIN_PS_FRAME_H
#define DTRAIN_PS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "ps.pb-c.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the PS protocol sends the host's floats as they are: little-endian hosts only"
#endif

enum {
  DT_PS_PROTOCOL_VERSION = 2, /* 2: HEARTBEAT goes both ways; worker ids, nonces */
  DT_PS_HEADER_BYTES = 5,
  DT_PS_TOKEN_MAX = 1024,   /* bytes of a token */
  DT_PS_MAX_SERVERS = 64,
  DT_PS_MAX_WORKERS = 1000000, /* ps.num_workers */
  DT_PS_MAX_TENSORS = 65536,
  DT_PS_PAYLOAD_FIELD = 15, /* the float payload's field number in INIT, PUSH, PARAMS */
  DT_PS_PAD_FIELD = 14
};

/* Largest model the protocol describes: 2^40 parameters. */
#define DT_PS_MAX_PARAMS ((uint64_t)1 << 40)

/* How a server orders updates, as WELCOME carries it (names in ps.h). */
typedef enum { DT_PS_ASYNC = 0, DT_PS_SSP = 1, DT_PS_SYNC = 2 } dt_ps_consistency;

typedef enum {
  DT_PS_HELLO = DTRAIN__PS__MESSAGE_TYPE__HELLO,
  DT_PS_WELCOME = DTRAIN__PS__MESSAGE_TYPE__WELCOME,
  DT_PS_INIT = DTRAIN__PS__MESSAGE_TYPE__INIT,
  DT_PS_PUSH = DTRAIN__PS__MESSAGE_TYPE__PUSH,
  DT_PS_PULL = DTRAIN__PS__MESSAGE_TYPE__PULL,
  DT_PS_PARAMS = DTRAIN__PS__MESSAGE_TYPE__PARAMS,
  DT_PS_HEARTBEAT = DTRAIN__PS__MESSAGE_TYPE__HEARTBEAT,
  DT_PS_BYE = DTRAIN__PS__MESSAGE_TYPE__BYE,
  DT_PS_ERROR = DTRAIN__PS__MESSAGE_TYPE__ERROR
} dt_ps_type;

/* "HELLO", ... or "unknown type". */
const char *dt_ps_type_name(int type);
/* "FRAME_TOO_LARGE", ... or "unknown code". */
const char *dt_ps_error_name(int code);
/* The protobuf-c descriptor of a type's body, or NULL for an unknown type. */
const ProtobufCMessageDescriptor *dt_ps_descriptor(int type);

/* A decoded message. The typed pointer of the union that matches `type` is valid; the
 * payload points into the frame it was decoded from (keep that alive) or into
 * `owned`. Payload fields inside the protobuf struct are left empty. */
typedef struct {
  int type;
  union {
    ProtobufCMessage *base;
    Dtrain__Ps__Hello *hello;
    Dtrain__Ps__Welcome *welcome;
    Dtrain__Ps__Init *init;
    Dtrain__Ps__Push *push;
    Dtrain__Ps__Pull *pull;
    Dtrain__Ps__Params *params;
    Dtrain__Ps__Heartbeat *heartbeat;
    Dtrain__Ps__Bye *bye;
    Dtrain__Ps__Error *error;
  } m;
  const float *payload; /* (npayload) */
  size_t npayload;
  float *owned;
} dt_ps_msg_t;

/* Decodes and validates the body of a frame of `type`. On failure returns
 * DT_ERR_FORMAT, a message naming the type and the problem, and in *code the
 * ErrorCode to answer with (UNKNOWN_TYPE or BAD_MESSAGE). */
int dt_ps_decode(int type, const uint8_t *body, size_t len, dt_ps_msg_t *out, int *code,
                 dt_error_t *err);
void dt_ps_msg_free(dt_ps_msg_t *m);

/* The checks of an INIT message that dt_ps_decode applies, for an Init read from
 * elsewhere (a server checkpoint): npayload must be its range's length, or SIZE_MAX
 * to skip that check. */
int dt_ps_check_init(const Dtrain__Ps__Init *m, size_t npayload, dt_error_t *err);

/* Encoding. `meta` is the message with its payload and pad fields empty; payload
 * types (INIT, PUSH, PARAMS) get a payload of npayload floats appended, starting at a
 * multiple of 4 bytes from the frame's start.
 *
 * dt_ps_encode_head writes the frame up to the payload's first byte into out (which
 * holds dt_ps_head_bound(meta) bytes) and returns that length; the frame is that head
 * followed by the 4*npayload payload bytes, sent from wherever they are. Returns 0 if
 * the frame would be longer than the 4-byte length allows. */
size_t dt_ps_head_bound(const ProtobufCMessage *meta);
size_t dt_ps_encode_head(int type, const ProtobufCMessage *meta, size_t npayload, uint8_t *out);
/* The whole frame into a malloc'd buffer (*out, *len); payload may be NULL only when
 * npayload is 0. */
int dt_ps_encode_alloc(int type, const ProtobufCMessage *meta, const float *payload,
                       size_t npayload, uint8_t **out, size_t *len, dt_error_t *err);
/* An ERROR frame with a printf-style message (truncated to fit buf) into buf; returns
 * its length. */
size_t dt_ps_encode_error(int code, uint8_t *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reassembles frames from a byte stream with bounded memory: at most one frame's bytes
 * (no more than max_body + 5) plus one read chunk are held. A frame too large for a
 * chunk is read exactly to its end, starting at buf[0], so its payload can be used in
 * place without a copy. */
typedef struct {
  uint8_t *buf;
  size_t cap;
  size_t start, end; /* buf[start, end) received, not yet returned */
  size_t max_body;   /* longest body accepted */
  size_t chunk;      /* read size between frames */
} dt_ps_reader_t;

int dt_ps_reader_init(dt_ps_reader_t *r, size_t max_body, dt_error_t *err);
void dt_ps_reader_free(dt_ps_reader_t *r);
/* Where the next read goes: up to *len bytes at *p. Call dt_ps_reader_next until it
 * returns 0 before asking for space again. */
int dt_ps_reader_space(dt_ps_reader_t *r, uint8_t **p, size_t *len, dt_error_t *err);
/* n bytes were written at the space's start. */
void dt_ps_reader_commit(dt_ps_reader_t *r, size_t n);
/* 1 and the next complete frame (its body stays valid until the next call of space),
 * 0 when more bytes are needed, or DT_ERR_FORMAT with *code FRAME_TOO_LARGE,
 * UNKNOWN_TYPE or BAD_MESSAGE (a length of 0) as soon as the header shows it. */
int dt_ps_reader_next(dt_ps_reader_t *r, int *type, const uint8_t **body, size_t *len, int *code,
                      dt_error_t *err);
/* Bytes of an incomplete frame held: non-zero at end of stream means it was cut. */
size_t dt_ps_reader_pending(const dt_ps_reader_t *r);
/* The buffer size (cap) the next dt_ps_reader_space will need: more than cap when the
 * start of a large frame has arrived. Lets a receiver with a memory budget decide
 * before the buffer grows. */
size_t dt_ps_reader_wants(const dt_ps_reader_t *r);
/* Gives back a buffer that grew for a large frame when it holds nothing; returns the
 * bytes freed (0 when it is in use or small). */
size_t dt_ps_reader_shrink(dt_ps_reader_t *r);

/* Lets a receiver put a large payload straight where it belongs instead of into the
 * reader: when the reader holds the start of a frame of `type` longer than a read
 * chunk, whose payload is its last field and whose other fields have all arrived,
 * decodes those fields into *out (npayload 0), sets *payload_len to the payload's
 * bytes and *have (*have_len bytes) to the part of them already received, consumes the frame
 * and returns 1; the caller then receives the remaining *payload_len - *have_len bytes
 * itself. Returns 0 when that does not apply (dt_ps_reader_next then handles the
 * frame as usual), or an error from decoding those fields. */
int dt_ps_reader_split_payload(dt_ps_reader_t *r, int type, dt_ps_msg_t *out,
                               const uint8_t **have, size_t *have_len, size_t *payload_len,
                               int *code, dt_error_t *err);

#endif
