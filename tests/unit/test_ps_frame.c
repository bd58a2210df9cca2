/* The parameter-server wire format: exact bytes of small frames (worked out by hand
 * from the protobuf encoding rules), round trips of every message type through the
 * stream reader in chunks of every size, the payload used in place and aligned, every
 * malformed input the decoder must reject with the right ErrorCode, and the shared
 * helpers (range split, signature, token comparison, [ps] config). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps.h"
#include "dtrain/ps_frame.h"
#include "test_util.h"

enum {
  E_TOO_LARGE = DTRAIN__PS__ERROR_CODE__FRAME_TOO_LARGE,
  E_UNKNOWN = DTRAIN__PS__ERROR_CODE__UNKNOWN_TYPE,
  E_BAD = DTRAIN__PS__ERROR_CODE__BAD_MESSAGE
};

/* Decodes one whole frame (header included); returns the decode status. */
static int decode_frame(const uint8_t *f, size_t len, dt_ps_msg_t *m, int *code) {
  dt_error_t err = {0};
  *code = 0;
  memset(m, 0, sizeof *m);
  if (len < 5) return -100;
  return dt_ps_decode(f[4], f + 5, len - 5, m, code, &err);
}

static void test_exact_bytes(void) {
  uint8_t buf[256];
  Dtrain__Ps__Pull pull = DTRAIN__PS__PULL__INIT;
  pull.clock = 5;
  size_t n = dt_ps_encode_head(DT_PS_PULL, &pull.base, 0, buf);
  /* length 3 = type + field 1 varint 5 (tag 0x08, value 0x05) */
  const uint8_t want[] = {0, 0, 0, 3, 5, 0x08, 0x05};
  CHECK_INT_EQ(n, sizeof want);
  CHECK(memcmp(buf, want, sizeof want) == 0);

  /* PUSH clock 1, steps 1, two floats: meta 08 01 20 01 ends at byte 9; pad field
   * 0x72 with 3 bytes; payload tag 0x7a, length 8: floats start at 16. */
  Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
  p.clock = 1;
  p.steps = 1;
  float payload[2] = {1.0f, -2.5f};
  uint8_t *f;
  size_t flen;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_encode_alloc(DT_PS_PUSH, &p.base, payload, 2, &f, &flen, &err), 0);
  const uint8_t head[] = {0, 0, 0, 20, 4, 0x08, 0x01, 0x20, 0x01, 0x72, 3, 0, 0, 0, 0x7a, 8};
  CHECK_INT_EQ(flen, 24);
  CHECK(memcmp(f, head, sizeof head) == 0);
  CHECK(memcmp(f + 16, payload, 8) == 0);
  free(f);
}

/* Every payload length and meta size puts the floats at a multiple of 4. */
static void test_alignment(void) {
  uint8_t buf[256];
  for (int64_t clock = 1; clock < (1LL << 40); clock = clock * 131 + 7)
    for (size_t np = 0; np < 70000; np = np * 3 + 1) {
      Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
      p.clock = clock;
      p.steps = 1;
      p.base_version = (uint64_t)clock * 3;
      size_t h = dt_ps_encode_head(DT_PS_PUSH, &p.base, np, buf);
      CHECK_INT_EQ(h % 4, 0);
      uint32_t L = (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
      CHECK_INT_EQ(L, h - 4 + 4 * np);
    }
}

/* Feeds frames to a reader in chunks of `step` bytes and decodes what comes out. */
static int feed(const uint8_t *data, size_t len, size_t step, size_t max_body,
                dt_ps_msg_t *out, int max_out, int *code) {
  dt_ps_reader_t r;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_reader_init(&r, max_body, &err), 0);
  int got = 0, rc = 0;
  *code = 0;
  for (size_t pos = 0; pos < len && rc >= 0;) {
    uint8_t *p;
    size_t space;
    CHECK_INT_EQ(dt_ps_reader_space(&r, &p, &space, &err), 0);
    size_t n = len - pos < step ? len - pos : step;
    if (n > space) n = space;
    memcpy(p, data + pos, n);
    dt_ps_reader_commit(&r, n);
    pos += n;
    for (;;) {
      int type;
      const uint8_t *body;
      size_t blen;
      rc = dt_ps_reader_next(&r, &type, &body, &blen, code, &err);
      if (rc <= 0) break;
      /* Large frames are read from buf[0], so their payload is used in place. */
      if (blen + 5 > r.chunk) CHECK(body == r.buf + 5);
      if (got < max_out) {
        int drc = dt_ps_decode(type, body, blen, &out[got], code, &err);
        CHECK_INT_EQ(drc, 0);
        if (drc) fprintf(stderr, "decode: %s\n", err.msg);
        /* The payload must outlive the reader's next read: copy it out. */
        if (drc == 0 && out[got].npayload && !out[got].owned) {
          float *copy = malloc(out[got].npayload * sizeof(float));
          memcpy(copy, out[got].payload, out[got].npayload * sizeof(float));
          out[got].owned = copy;
          out[got].payload = copy;
        }
        got++;
      }
    }
  }
  if (rc >= 0 && dt_ps_reader_pending(&r)) rc = -99;
  dt_ps_reader_free(&r);
  return rc < 0 ? rc : got;
}

static size_t append(uint8_t **buf, size_t len, int type, const ProtobufCMessage *m,
                     const float *payload, size_t np) {
  uint8_t *f;
  size_t flen;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_encode_alloc(type, m, payload, np, &f, &flen, &err), 0);
  *buf = realloc(*buf, len + flen);
  memcpy(*buf + len, f, flen);
  free(f);
  return len + flen;
}

static void test_round_trips(void) {
  /* A two-tensor model split over 3 servers; server 1's range. */
  enum { NP = 100000 };
  uint64_t b, e;
  dt_ps_range(NP, 3, 1, &b, &e);
  size_t rn = (size_t)(e - b);
  float *vals = malloc(rn * sizeof *vals);
  for (size_t i = 0; i < rn; i++) vals[i] = (float)i * 0.25f - 7.0f;

  Dtrain__Ps__Hello h = DTRAIN__PS__HELLO__INIT;
  h.protocol = DT_PS_PROTOCOL_VERSION;
  h.worker_id = 7;
  h.signature = 0x0123456789abcdefULL;
  h.token.data = (uint8_t *)"s3cret";
  h.token.len = 6;
  h.num_params = NP;
  h.server_index = 1;
  h.num_servers = 3;
  h.clock = 42;
  Dtrain__Ps__Welcome w = DTRAIN__PS__WELCOME__INIT;
  w.initialized = true;
  w.version = 99;
  w.consistency = DTRAIN__PS__CONSISTENCY__SSP;
  w.staleness = 2;
  w.clock = 40;
  w.heartbeat_timeout_s = 2.5;
  Dtrain__Ps__Tensor t1 = DTRAIN__PS__TENSOR__INIT, t2 = DTRAIN__PS__TENSOR__INIT;
  uint32_t s1[2] = {300, 300}, s2[1] = {10000};
  t1.name = "dense_1.kernel";
  t1.n_shape = 2;
  t1.shape = s1;
  t1.count = 90000;
  t1.decay = true;
  t2.name = "dense_1.bias";
  t2.n_shape = 1;
  t2.shape = s2;
  t2.offset = 90000;
  t2.count = 10000;
  Dtrain__Ps__Tensor *tensors[2] = {&t1, &t2};
  Dtrain__Ps__Optimizer o = DTRAIN__PS__OPTIMIZER__INIT;
  o.momentum = 0.9;
  o.epsilon = 1e-7;
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  in.signature = h.signature;
  in.num_params = NP;
  in.server_index = 1;
  in.num_servers = 3;
  in.n_tensors = 2;
  in.tensors = tensors;
  in.optimizer = &o;
  Dtrain__Ps__Push p = DTRAIN__PS__PUSH__INIT;
  p.clock = 43;
  p.lr = 0.05f;
  p.base_version = 98;
  p.steps = 2;
  Dtrain__Ps__Pull pl = DTRAIN__PS__PULL__INIT;
  pl.clock = 45;
  Dtrain__Ps__Params pa = DTRAIN__PS__PARAMS__INIT;
  pa.version = 100;
  pa.min_clock = 41;
  Dtrain__Ps__Heartbeat hb = DTRAIN__PS__HEARTBEAT__INIT;
  hb.clock = 43;
  Dtrain__Ps__Bye bye = DTRAIN__PS__BYE__INIT;
  Dtrain__Ps__Error er = DTRAIN__PS__ERROR__INIT;
  er.code = DTRAIN__PS__ERROR_CODE__BAD_TOKEN;
  er.message = "wrong token";

  uint8_t *stream = NULL;
  size_t len = 0;
  len = append(&stream, len, DT_PS_HELLO, &h.base, NULL, 0);
  len = append(&stream, len, DT_PS_WELCOME, &w.base, NULL, 0);
  len = append(&stream, len, DT_PS_INIT, &in.base, vals, rn);
  len = append(&stream, len, DT_PS_PUSH, &p.base, vals, rn);
  len = append(&stream, len, DT_PS_PULL, &pl.base, NULL, 0);
  len = append(&stream, len, DT_PS_PARAMS, &pa.base, vals, rn);
  len = append(&stream, len, DT_PS_HEARTBEAT, &hb.base, NULL, 0);
  len = append(&stream, len, DT_PS_BYE, &bye.base, NULL, 0);
  len = append(&stream, len, DT_PS_ERROR, &er.base, NULL, 0);

  const size_t steps[] = {1, 3, 7, 4096, 65536, 1 << 20};
  for (size_t si = 0; si < sizeof steps / sizeof *steps; si++) {
    if (steps[si] == 1 && si) continue;
    dt_ps_msg_t m[9];
    memset(m, 0, sizeof m);
    int code;
    /* One byte at a time is slow for 1.2 MB: only over the small frames' prefix. */
    size_t use = steps[si] == 1 ? 200 : len;
    int got = feed(stream, use, steps[si], 64 << 20, m, 9, &code);
    if (steps[si] == 1) {
      CHECK(got == -99); /* cut in the middle of INIT */
      CHECK_INT_EQ(m[0].type, DT_PS_HELLO);
      CHECK_INT_EQ(m[1].type, DT_PS_WELCOME);
    } else {
      CHECK_INT_EQ(got, 9);
      CHECK_INT_EQ(m[0].m.hello->worker_id, 7);
      CHECK_INT_EQ(m[0].m.hello->signature, 0x0123456789abcdefULL);
      CHECK_INT_EQ(m[0].m.hello->token.len, 6);
      CHECK(memcmp(m[0].m.hello->token.data, "s3cret", 6) == 0);
      CHECK_INT_EQ(m[0].m.hello->clock, 42);
      CHECK_INT_EQ(m[1].m.welcome->consistency, DTRAIN__PS__CONSISTENCY__SSP);
      CHECK_NEAR(m[1].m.welcome->heartbeat_timeout_s, 2.5, 0);
      CHECK_INT_EQ(m[2].m.init->n_tensors, 2);
      CHECK(strcmp(m[2].m.init->tensors[1]->name, "dense_1.bias") == 0);
      CHECK_NEAR(m[2].m.init->optimizer->momentum, 0.9, 0);
      CHECK_INT_EQ(m[2].npayload, rn);
      CHECK(memcmp(m[2].payload, vals, rn * sizeof(float)) == 0);
      CHECK_INT_EQ(m[3].m.push->clock, 43);
      CHECK_NEAR(m[3].m.push->lr, 0.05f, 0);
      CHECK_INT_EQ(m[3].m.push->steps, 2);
      CHECK_INT_EQ(m[3].npayload, rn);
      CHECK(memcmp(m[3].payload, vals, rn * sizeof(float)) == 0);
      CHECK_INT_EQ(m[4].m.pull->clock, 45);
      CHECK_INT_EQ(m[5].m.params->version, 100);
      CHECK_INT_EQ(m[5].npayload, rn);
      CHECK_NEAR(m[5].payload[rn - 1], vals[rn - 1], 0);
      CHECK_INT_EQ(m[6].m.heartbeat->clock, 43);
      CHECK_INT_EQ(m[7].type, DT_PS_BYE);
      CHECK_INT_EQ(m[8].m.error->code, DTRAIN__PS__ERROR_CODE__BAD_TOKEN);
      CHECK(strcmp(m[8].m.error->message, "wrong token") == 0);
    }
    for (int i = 0; i < 9; i++) dt_ps_msg_free(&m[i]);
  }
  free(stream);

  /* In place and aligned when the frame starts aligned. */
  uint8_t *f;
  size_t flen;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_encode_alloc(DT_PS_PUSH, &p.base, vals, rn, &f, &flen, &err), 0);
  dt_ps_msg_t m;
  int code;
  CHECK_INT_EQ(decode_frame(f, flen, &m, &code), 0);
  CHECK(m.owned == NULL);
  CHECK((const uint8_t *)m.payload > f && (const uint8_t *)m.payload < f + flen);
  CHECK_INT_EQ((uintptr_t)m.payload % 4, 0);
  dt_ps_msg_free(&m);
  /* Shifted by one byte: still decoded, from an aligned copy. */
  uint8_t *g = malloc(flen + 1);
  memcpy(g + 1, f, flen);
  CHECK_INT_EQ(decode_frame(g + 1, flen, &m, &code), 0);
  CHECK(m.owned != NULL);
  CHECK_INT_EQ((uintptr_t)m.payload % 4, 0);
  CHECK(memcmp(m.payload, vals, rn * sizeof(float)) == 0);
  dt_ps_msg_free(&m);
  free(g);
  free(f);
  free(vals);
}

/* A frame from a hand-written body: header for `type`, then the body bytes. */
static size_t frame_of(uint8_t *out, int type, const uint8_t *body, size_t blen) {
  uint32_t L = (uint32_t)blen + 1;
  out[0] = (uint8_t)(L >> 24);
  out[1] = (uint8_t)(L >> 16);
  out[2] = (uint8_t)(L >> 8);
  out[3] = (uint8_t)L;
  out[4] = (uint8_t)type;
  if (blen) memcpy(out + 5, body, blen);
  return blen + 5;
}

static void expect_bad(int type, const uint8_t *body, size_t blen, int want_code, const char *what) {
  uint8_t f[2048];
  size_t n = frame_of(f, type, body, blen);
  dt_ps_msg_t m;
  int code;
  int rc = decode_frame(f, n, &m, &code);
  if (rc == 0 || code != want_code)
    fprintf(stderr, "case '%s': rc %d code %d (want %d)\n", what, rc, code, want_code);
  CHECK(rc != 0);
  CHECK_INT_EQ(code, want_code);
  CHECK(m.m.base == NULL && m.owned == NULL);
}

static void test_malformed(void) {
  /* Structure of the body. */
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x08}, 1, E_BAD, "varint cut");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0x01}, 12, E_BAD, "varint of 11 bytes");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x00, 0x01}, 2, E_BAD, "field number 0");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x0b, 0x0c}, 2, E_BAD, "wire type 3 (group)");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x0f}, 1, E_BAD, "wire type 7");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x12, 0x05, 0x01}, 3, E_BAD, "bytes past the end");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x09, 1, 2, 3}, 4, E_BAD, "fixed64 cut");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x0d, 1, 2}, 3, E_BAD, "fixed32 cut");
  /* Well-formed protobuf that protobuf-c rejects: a known varint field as bytes. */
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x0a, 0x01, 0x00}, 3, E_BAD, "clock as bytes");
  /* The payload field. */
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x08, 1, 0x20, 1, 0x7a, 3, 1, 2, 3}, 9, E_BAD,
             "payload of 3 bytes");
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x08, 1, 0x20, 1, 0x78, 4}, 6, E_BAD,
             "payload as a varint");
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x08, 1, 0x20, 1, 0x7a, 0, 0x7a, 0}, 8, E_BAD,
             "payload twice");
  /* Field values. */
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x20, 1, 0x7a, 0}, 4, E_BAD, "push clock 0");
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x08, 1, 0x7a, 0}, 4, E_BAD, "push steps 0");
  expect_bad(DT_PS_PUSH, (const uint8_t[]){0x08, 1, 0x20, 1, 0x15, 0, 0, 0xc0, 0x7f}, 9, E_BAD,
             "push lr NaN");
  expect_bad(DT_PS_PULL, (const uint8_t[]){0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0x01}, 11, E_BAD, "pull clock -1");
  /* HELLO: num_params 1, 2 servers (more servers than parameters), index 0. */
  expect_bad(DT_PS_HELLO, (const uint8_t[]){0x28, 1, 0x38, 2}, 4, E_BAD, "2 servers, 1 param");
  expect_bad(DT_PS_HELLO, (const uint8_t[]){0x28, 10, 0x30, 2, 0x38, 2}, 6, E_BAD,
             "server 2 of 2");
  expect_bad(DT_PS_HELLO, (const uint8_t[]){0x28, 10}, 2, E_BAD, "0 servers");
  expect_bad(DT_PS_HELLO, (const uint8_t[]){0x38, 1}, 2, E_BAD, "0 params");
  uint8_t big[DT_PS_TOKEN_MAX + 16] = {0x28, 10, 0x38, 1, 0x22, 0x81, 0x08};
  expect_bad(DT_PS_HELLO, big, 7 + DT_PS_TOKEN_MAX + 1, E_BAD, "token of 1025 bytes");
  /* An unknown type reaching decode. */
  uint8_t f[16];
  dt_ps_msg_t m;
  int code;
  size_t n = frame_of(f, 42, NULL, 0);
  CHECK(decode_frame(f, n, &m, &code) != 0);
  CHECK_INT_EQ(code, E_UNKNOWN);

  /* The reader: headers that are refused before any body arrives. */
  const struct {
    uint8_t h[5];
    size_t len;
    int code;
  } hdr[] = {{{0xff, 0xff, 0xff, 0xff, 4}, 5, E_TOO_LARGE},
             {{0x00, 0x10, 0x00, 0x02, 4}, 4, E_TOO_LARGE}, /* only the length needed */
             {{0, 0, 0, 0, 4}, 4, E_BAD},
             {{0, 0, 0, 1, 0}, 5, E_UNKNOWN},
             {{0, 0, 0, 1, 10}, 5, E_UNKNOWN},
             {{0, 0, 0, 1, 255}, 5, E_UNKNOWN}};
  for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++) {
    dt_ps_msg_t out[1];
    memset(out, 0, sizeof out);
    int rc = feed(hdr[i].h, hdr[i].len, 1, 1 << 20, out, 1, &code);
    CHECK(rc < 0 && rc != -99);
    CHECK_INT_EQ(code, hdr[i].code);
  }
  /* A frame exactly at the limit passes, one byte over does not. */
  /* (a BYE whose body is one unknown bytes field: field 1, 62 bytes) */
  uint8_t at[5 + 64] = {0, 0, 0, 65, DT_PS_BYE, 0x0a, 62};
  dt_ps_msg_t out[1];
  memset(out, 0, sizeof out);
  CHECK_INT_EQ(feed(at, sizeof at, 13, 64, out, 1, &code), 1);
  dt_ps_msg_free(&out[0]);
  at[3] = 66;
  CHECK(feed(at, sizeof at, 13, 64, out, 1, &code) < 0);
  CHECK_INT_EQ(code, E_TOO_LARGE);
}

/* A large PARAMS frame can be split after its first read: its fields are decoded and
 * the rest of the payload is the caller's to receive. */
static void test_split_payload(void) {
  enum { N = 50000 };
  float *vals = malloc(N * sizeof *vals);
  for (int i = 0; i < N; i++) vals[i] = (float)i;
  Dtrain__Ps__Params pa = DTRAIN__PS__PARAMS__INIT;
  pa.version = 77;
  uint8_t *f;
  size_t flen;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_encode_alloc(DT_PS_PARAMS, &pa.base, vals, N, &f, &flen, &err), 0);
  dt_ps_reader_t r;
  CHECK_INT_EQ(dt_ps_reader_init(&r, 1 << 20, &err), 0);
  uint8_t *p;
  size_t space;
  CHECK_INT_EQ(dt_ps_reader_space(&r, &p, &space, &err), 0);
  CHECK_INT_EQ(space, r.chunk);
  memcpy(p, f, 1000);
  dt_ps_reader_commit(&r, 1000);
  dt_ps_msg_t m;
  const uint8_t *have;
  size_t have_len, plen;
  int code;
  CHECK_INT_EQ(dt_ps_reader_split_payload(&r, DT_PS_PUSH, &m, &have, &have_len, &plen, &code, &err), 0);
  CHECK_INT_EQ(dt_ps_reader_split_payload(&r, DT_PS_PARAMS, &m, &have, &have_len, &plen, &code, &err), 1);
  CHECK_INT_EQ(m.m.params->version, 77);
  CHECK_INT_EQ(m.npayload, 0);
  CHECK_INT_EQ(plen, N * sizeof(float));
  CHECK_INT_EQ(have_len, 1000 - (flen - plen));
  CHECK(memcmp(have, vals, have_len) == 0);
  CHECK_INT_EQ(dt_ps_reader_pending(&r), 0);
  dt_ps_msg_free(&m);
  /* A small frame is not split. */
  Dtrain__Ps__Params small = DTRAIN__PS__PARAMS__INIT;
  uint8_t *g;
  size_t glen;
  CHECK_INT_EQ(dt_ps_encode_alloc(DT_PS_PARAMS, &small.base, vals, 100, &g, &glen, &err), 0);
  CHECK_INT_EQ(dt_ps_reader_space(&r, &p, &space, &err), 0);
  memcpy(p, g, glen - 1);
  dt_ps_reader_commit(&r, glen - 1);
  CHECK_INT_EQ(dt_ps_reader_split_payload(&r, DT_PS_PARAMS, &m, &have, &have_len, &plen, &code, &err), 0);
  dt_ps_reader_free(&r);
  free(g);
  free(f);
  free(vals);
}

static void test_init_checks(void) {
  uint32_t shape[2] = {10, 5};
  Dtrain__Ps__Tensor t = DTRAIN__PS__TENSOR__INIT;
  t.name = "dense_1.kernel";
  t.n_shape = 2;
  t.shape = shape;
  t.count = 50;
  Dtrain__Ps__Tensor *tp[1] = {&t};
  Dtrain__Ps__Optimizer o = DTRAIN__PS__OPTIMIZER__INIT;
  Dtrain__Ps__Init in = DTRAIN__PS__INIT__INIT;
  in.num_params = 50;
  in.num_servers = 2;
  in.server_index = 1;
  in.n_tensors = 1;
  in.tensors = tp;
  in.optimizer = &o;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_ps_check_init(&in, 25, &err), 0);
  CHECK(dt_ps_check_init(&in, 24, &err) != 0); /* the range of server 1 of 2 is 25 */
  CHECK_STR_CONTAINS(err.msg, "24 parameters for a range of 25");
  t.count = 49;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  t.count = 50;
  t.offset = 1;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  t.offset = 0;
  shape[0] = 0;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  shape[0] = 10;
  o.momentum = 1.5;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  o.momentum = NAN;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  o.momentum = 0.0;
  o.kind = 9;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  o.kind = 0;
  in.optimizer = NULL;
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  in.optimizer = &o;
  t.name = "";
  CHECK(dt_ps_check_init(&in, 25, &err) != 0);
  t.name = "dense_1.kernel";
  CHECK_INT_EQ(dt_ps_check_init(&in, SIZE_MAX, &err), 0);
}

static void test_range_signature_token(void) {
  /* Ranges cover [0, n) in order, and their lengths differ by at most one. */
  const uint64_t ns[] = {1, 7, 100, 235146, 1000003};
  for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
    for (unsigned K = 1; K <= 9 && K <= ns[a]; K++) {
      uint64_t prev = 0, lo = UINT64_MAX, hi = 0;
      for (unsigned k = 0; k < K; k++) {
        uint64_t b, e;
        dt_ps_range(ns[a], K, k, &b, &e);
        CHECK_INT_EQ(b, prev);
        prev = e;
        lo = e - b < lo ? e - b : lo;
        hi = e - b > hi ? e - b : hi;
      }
      CHECK_INT_EQ(prev, ns[a]);
      CHECK(hi - lo <= 1);
    }
  uint64_t b, e;
  dt_ps_range(10, 3, 0, &b, &e);
  CHECK_INT_EQ(b, 0);
  CHECK_INT_EQ(e, 3);
  dt_ps_range(10, 3, 2, &b, &e);
  CHECK_INT_EQ(b, 6);
  CHECK_INT_EQ(e, 10);

  dt_param_info_t t[2] = {{.name = "dense_1.kernel", .shape = {2, {784, 256}}, .offset = 0,
                           .count = 784 * 256, .decay = true},
                          {.name = "dense_1.bias", .shape = {1, {256}}, .offset = 784 * 256,
                           .count = 256}};
  dt_optim_config_t o = dt_optim_defaults(DT_OPT_SGD);
  o.momentum = 0.9;
  uint64_t s0 = dt_ps_signature(t, 2, 784 * 257, &o);
  CHECK(s0 == dt_ps_signature(t, 2, 784 * 257, &o));
  o.momentum = 0.8999999;
  CHECK(s0 != dt_ps_signature(t, 2, 784 * 257, &o));
  o.momentum = 0.9;
  t[1].decay = true;
  CHECK(s0 != dt_ps_signature(t, 2, 784 * 257, &o));
  t[1].decay = false;
  t[0].shape.dims[1] = 255;
  CHECK(s0 != dt_ps_signature(t, 2, 784 * 257, &o));
  t[0].shape.dims[1] = 256;
  snprintf(t[1].name, sizeof t[1].name, "dense_2.bias");
  CHECK(s0 != dt_ps_signature(t, 2, 784 * 257, &o));

  CHECK(dt_ps_token_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abc", 3));
  CHECK(!dt_ps_token_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abd", 3));
  CHECK(!dt_ps_token_equal((const uint8_t *)"abc", 3, (const uint8_t *)"ab", 2));
  CHECK(!dt_ps_token_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abcd", 4));
  CHECK(!dt_ps_token_equal((const uint8_t *)"abc", 3, NULL, 0));
}

static int read_ps(const char *text, dt_ps_config_t *o, dt_error_t *err) {
  dt_config_t *cfg = dt_config_new();
  int rc = dt_config_load_string(cfg, text, "t.ini", err);
  if (!rc) rc = dt_ps_config_read(cfg, o, err);
  if (!rc) rc = dt_config_check_unused(cfg, err);
  dt_config_free(cfg);
  return rc;
}

static void test_config(void) {
  static dt_ps_config_t o;
  dt_error_t err = {0};
  unsetenv("DTRAIN_PS_TOKEN");
  CHECK_INT_EQ(read_ps("[ps]\nservers = 127.0.0.1:7070, [::1]:7071 ,host-a:0\n", &o, &err), 0);
  CHECK_INT_EQ(o.nservers, 3);
  CHECK(strcmp(o.servers[1].host, "::1") == 0 && strcmp(o.servers[1].port, "7071") == 0);
  CHECK(strcmp(o.servers[2].host, "host-a") == 0 && strcmp(o.servers[2].port, "0") == 0);
  CHECK(!o.has_token);
  CHECK_INT_EQ(o.consistency, DT_PS_ASYNC);
  CHECK(!o.overlap);
  CHECK(read_ps("[ps]\nservers = 127.0.0.1\n", &o, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "t.ini:2");
  CHECK_STR_CONTAINS(err.msg, "no port");
  CHECK(read_ps("[ps]\nservers = a:70000\n", &o, &err) != 0);
  CHECK(read_ps("[ps]\nservers = a:1,,b:2\n", &o, &err) != 0);
  CHECK(read_ps("[ps]\nworker_id = 2\nnum_workers = 2\n", &o, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "worker_id = 2 must be below num_workers = 2");
  CHECK(read_ps("[ps]\nheartbeat_s = 5\nheartbeat_timeout_s = 5\n", &o, &err) != 0);
  CHECK(read_ps("[ps]\nconsistency = bsp\n", &o, &err) != 0);
  CHECK(read_ps("[ps]\nstalenes = 2\n", &o, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "unknown key 'stalenes'");
  CHECK_INT_EQ(read_ps("[ps]\nconsistency = ssp\nstaleness = 3\n", &o, &err), 0);
  CHECK_INT_EQ(o.consistency, DT_PS_SSP);
  CHECK_INT_EQ(o.staleness, 3);

  char path[] = "/tmp/test_ps_token_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("  top-secret \n", f);
  fclose(f);
  char text[256];
  snprintf(text, sizeof text, "[ps]\ntoken_file = %s\n", path);
  setenv("DTRAIN_PS_TOKEN", "from-env", 1);
  CHECK_INT_EQ(read_ps(text, &o, &err), 0);
  CHECK(o.has_token && o.token_len == 10 && memcmp(o.token, "top-secret", 10) == 0);
  CHECK_INT_EQ(read_ps("[ps]\n", &o, &err), 0);
  CHECK(o.has_token && o.token_len == 8 && memcmp(o.token, "from-env", 8) == 0);
  unsetenv("DTRAIN_PS_TOKEN");
  f = fopen(path, "w");
  fputs("\n\n", f);
  fclose(f);
  CHECK(read_ps(text, &o, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "is empty");
  remove(path);
  CHECK(read_ps(text, &o, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "cannot open");
}

int main(void) {
  test_exact_bytes();
  test_alignment();
  test_round_trips();
  test_malformed();
  test_split_payload();
  test_init_checks();
  test_range_signature_token();
  test_config();
  return test_summary("test_ps_frame");
}
