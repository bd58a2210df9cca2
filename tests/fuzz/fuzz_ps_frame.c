/* libFuzzer target for the parameter-server frame decoder: the bytes a server or a
 * worker reads from a connection.
 *
 * Input: byte 0 seeds how the rest is cut into reads; the rest is the byte stream. It
 * goes through dt_ps_reader in reads of varying sizes (as recv() would deliver it),
 * and every complete frame is decoded and validated. A frame that decodes is encoded
 * again and must decode to the same type and payload. The whole input is also
 * decoded directly as the body of each message type. Nothing may crash, read out of
 * bounds, or leak (ASan/LSan report it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/ps_frame.h"

/* Small limit so that the fuzzer reaches "too large" quickly; still above a read
 * chunk (64 KiB), so that large frames exist. */
enum { MAX_BODY = 1 << 17 };

static void reencode(const dt_ps_msg_t *m) {
  /* The pad field is the encoder's; a payload-less type gets no payload. */
  ProtobufCMessage *base = m->m.base;
  if (m->type == DT_PS_PUSH) m->m.push->pad.len = 0;
  if (m->type == DT_PS_PARAMS) m->m.params->pad.len = 0;
  if (m->type == DT_PS_INIT) m->m.init->pad.len = 0;
  uint8_t *f;
  size_t len;
  dt_error_t err;
  if (dt_ps_encode_alloc(m->type, base, m->payload, m->npayload, &f, &len, &err)) return;
  dt_ps_msg_t again;
  int code;
  if (dt_ps_decode(f[4], f + 5, len - 5, &again, &code, &err) != 0) abort();
  if (again.type != m->type || again.npayload != m->npayload ||
      (m->npayload && memcmp(again.payload, m->payload, m->npayload * sizeof(float)) != 0))
    abort();
  dt_ps_msg_free(&again);
  free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t s = data[0] * 2654435761u + 1;
  const uint8_t *in = data + 1;
  size_t n = size - 1;

  dt_ps_reader_t r;
  dt_error_t err;
  if (dt_ps_reader_init(&r, MAX_BODY, &err)) return 0;
  for (size_t pos = 0; pos < n;) {
    uint8_t *p;
    size_t space;
    if (dt_ps_reader_space(&r, &p, &space, &err)) break;
    s = s * 1103515245u + 12345u;
    size_t want = 1 + (s >> 16) % 97;
    if (want > n - pos) want = n - pos;
    if (want > space) want = space;
    memcpy(p, in + pos, want);
    dt_ps_reader_commit(&r, want);
    pos += want;
    int type, code, rc;
    /* Odd seeds also try the split of a large payload off its frame, as the worker
     * does for PARAMS; the payload's rest then reaches the reader as if new frames. */
    if (data[0] & 1) {
      static const int kinds[3] = {DT_PS_PARAMS, DT_PS_PUSH, DT_PS_INIT};
      dt_ps_msg_t m;
      const uint8_t *have;
      size_t have_len, plen;
      if (dt_ps_reader_split_payload(&r, kinds[(data[0] >> 1) % 3], &m, &have, &have_len, &plen,
                                     &code, &err) == 1) {
        if (have_len > plen || m.npayload) abort();
        dt_ps_msg_free(&m);
      }
    }
    const uint8_t *body;
    size_t len;
    while ((rc = dt_ps_reader_next(&r, &type, &body, &len, &code, &err)) == 1) {
      dt_ps_msg_t m;
      if (dt_ps_decode(type, body, len, &m, &code, &err) == 0) {
        reencode(&m);
        dt_ps_msg_free(&m);
      }
    }
    if (rc < 0) break;
  }
  dt_ps_reader_free(&r);

  for (int type = DT_PS_HELLO; type <= DT_PS_ERROR; type++) {
    dt_ps_msg_t m;
    int code;
    if (dt_ps_decode(type, in, n, &m, &code, &err) == 0) dt_ps_msg_free(&m);
  }
  return 0;
}
