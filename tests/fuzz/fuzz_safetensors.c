/* libFuzzer target for the safetensors reader: checkpoint files (model, optimizer,
 * per-rank state) are read back from disks that may hold damaged or foreign files.
 *
 * Input: a whole safetensors file. It is decoded against a fixed small model (the
 * tensors of examples/binary-addition.ini with 4 RNN units, as the worker writes them)
 * with dt_safetensors_decode, against that model's Adam moments (two buffers) with
 * dt_safetensors_decode_parts, and asked for __metadata__ values with
 * dt_safetensors_metadata (also into a short buffer). What decodes must be exactly the
 * bytes the header's data_offsets point at, and must encode and decode again to the
 * same floats. The input's first bytes also serve as a metadata value, which must
 * encode and read back unchanged. Nothing may crash, read out of bounds, or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/checkpoint.h"
#include "dtrain/json.h"

enum { N_MODEL = 5, N_FLOATS = 33 };

/* The model: names and shapes as in model.safetensors; offsets into one flat buffer. */
static const dt_param_info_t model[N_MODEL] = {
    {.name = "simple_rnn_1.kernel", .shape = {2, {2, 4}}, .offset = 0, .count = 8},
    {.name = "simple_rnn_1.recurrent_kernel", .shape = {2, {4, 4}}, .offset = 8, .count = 16},
    {.name = "simple_rnn_1.bias", .shape = {1, {4}}, .offset = 24, .count = 4},
    {.name = "dense_1.kernel", .shape = {2, {4, 1}}, .offset = 28, .count = 4},
    {.name = "dense_1.bias", .shape = {1, {1}}, .offset = 32, .count = 1},
};

/* The optimizer's moments: the model's tensors twice, one buffer per moment. */
static dt_param_info_t moments[2 * N_MODEL];

static void setup(void) {
  if (moments[0].count) return;
  for (int m = 0; m < 2; m++)
    for (int i = 0; i < N_MODEL; i++) {
      dt_param_info_t *t = &moments[m * N_MODEL + i];
      *t = model[i];
      snprintf(t->name, sizeof t->name, "%s.moment%d", model[i].name, m + 1);
    }
}

/* Checks that each tensor's floats in bases[i] are the bytes its data_offsets name in
 * the file (whose header the decoder accepted, so it parses). */
static void check_offsets(const uint8_t *data, size_t size, const dt_param_info_t *t, int n,
                          float *const *bases) {
  uint64_t h;
  memcpy(&h, data, 8);
  dt_json_t *hdr;
  dt_error_t err;
  if (dt_json_parse((const char *)data + 8, (size_t)h, "header", &hdr, &err) != 0) abort();
  for (int i = 0; i < n; i++) {
    const dt_json_t *e = dt_json_get(hdr, t[i].name);
    const dt_json_t *offs = dt_json_get(e, "data_offsets");
    if (!offs || offs->count != 2) abort();
    double b = offs->child->number, end = offs->child->next->number;
    /* Offsets are whole byte counts. */
    if (b != (double)(uint64_t)b || end != (double)(uint64_t)end) abort();
    size_t at = 8 + (size_t)h + (size_t)b, len = t[i].count * sizeof(float);
    if ((size_t)(end - b) != len || at + len > size) abort();
    if (memcmp(bases[i] + t[i].offset, data + at, len) != 0) abort();
  }
  dt_json_free(hdr);
}

/* Encodes the decoded tensors and decodes them again: the same floats, bit for bit. */
static void roundtrip(const dt_param_info_t *t, int n, float *const *bases, int nbufs) {
  void *file;
  size_t len;
  dt_error_t err;
  static const char *const meta[] = {"type", "adam", NULL};
  if (dt_safetensors_encode_parts(t, n, (const float *const *)bases, meta, &file, &len, &err))
    abort();
  float back[2][N_FLOATS];
  memset(back, 0xff, sizeof back);
  float *back_bases[2 * N_MODEL];
  for (int i = 0; i < n; i++) back_bases[i] = back[nbufs == 1 ? 0 : i / N_MODEL];
  if (dt_safetensors_decode_parts(file, len, t, n, back_bases, "again", &err)) abort();
  for (int i = 0; i < n; i++)
    if (memcmp(back_bases[i] + t[i].offset, bases[i] + t[i].offset,
               t[i].count * sizeof(float)) != 0)
      abort();
  char v[8];
  if (dt_safetensors_metadata(file, len, "type", v, sizeof v, &err) || strcmp(v, "adam") != 0)
    abort();
  free(file);
}

/* A value made of the input's first bytes goes through the encoder's quoting and the
 * reader's unescaping unchanged. */
static void metadata_roundtrip(const uint8_t *data, size_t size) {
  char value[256];
  size_t n = size < sizeof value - 1 ? size : sizeof value - 1;
  memcpy(value, data, n);
  value[n] = '\0';
  const char *meta[] = {"key", value, NULL};
  float x[N_FLOATS] = {0};
  void *file;
  size_t len;
  dt_error_t err;
  if (dt_safetensors_encode(model, N_MODEL, x, meta, &file, &len, &err)) abort();
  char back[sizeof value];
  if (dt_safetensors_metadata(file, len, "key", back, sizeof back, &err) ||
      strcmp(back, value) != 0)
    abort();
  if (dt_safetensors_decode(file, len, model, N_MODEL, x, "meta", &err)) abort();
  free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  dt_error_t err;

  float buf[N_FLOATS];
  memset(buf, 0xff, sizeof buf);
  int rc = dt_safetensors_decode(data, size, model, N_MODEL, buf, "fuzz.safetensors", &err);
  if (rc == 0) {
    float *bases[N_MODEL];
    for (int i = 0; i < N_MODEL; i++) bases[i] = buf;
    check_offsets(data, size, model, N_MODEL, bases);
    roundtrip(model, N_MODEL, bases, 1);
  } else if (rc != err.code || !err.msg[0]) {
    abort();
  }

  float m1[N_FLOATS], m2[N_FLOATS];
  float *bases[2 * N_MODEL];
  for (int i = 0; i < 2 * N_MODEL; i++) bases[i] = i < N_MODEL ? m1 : m2;
  rc = dt_safetensors_decode_parts(data, size, moments, 2 * N_MODEL, bases, "fuzz.safetensors",
                                   &err);
  if (rc == 0) {
    check_offsets(data, size, moments, 2 * N_MODEL, bases);
    roundtrip(moments, 2 * N_MODEL, bases, 2);
  } else if (rc != err.code || !err.msg[0]) {
    abort();
  }
  /* No tensors expected: only a file without any may decode. */
  rc = dt_safetensors_decode(data, size, NULL, 0, buf, "fuzz.safetensors", &err);
  if (rc != 0 && rc != err.code) abort();

  /* Keys the worker and the server ask for; one of them also into a short buffer. */
  static const char *const keys[] = {"format", "step", "type", ""};
  enum { N_KEYS = sizeof keys / sizeof keys[0] };
  char val[N_KEYS][4096], small[5];
  int found[N_KEYS];
  for (int k = 0; k < N_KEYS; k++) {
    found[k] = dt_safetensors_metadata(data, size, keys[k], val[k], sizeof val[k], &err);
    if (found[k] != 0 && (found[k] != err.code || !err.msg[0])) abort();
  }
  int k = (int)(size % N_KEYS);
  rc = dt_safetensors_metadata(data, size, keys[k], small, sizeof small, &err);
  if (rc != found[k] ||
      (rc == 0 && (strlen(small) >= sizeof small || strncmp(small, val[k], sizeof small - 1))))
    abort();

  metadata_roundtrip(data, size);
  return 0;
}
