/* CRC-32C: known check values, both implementations, incremental use and masking.
 *
 * Expected values were computed independently with a bit-by-bit CRC-32C in Python
 * (reflected polynomial 0x82f63b78, init and final xor 0xffffffff):
 *   c = 0xffffffff; for b in data: c ^= b; 8 times: c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
 *   crc = c ^ 0xffffffff; mask = (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff
 * "123456789" -> 0xe3069283, 32 zero bytes -> 0x8a9136aa, 32 0xff bytes -> 0x62a8ab43 and
 * bytes 0..31 -> 0x46dd794e also match RFC 3720 (iSCSI), appendix B.4. */
#include "dtrain/crc32c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_known(crc_fn f) {
  uint8_t buf[1000 + 8];
  CHECK_INT_EQ(f(0, NULL, 0), 0x00000000u);
  CHECK_INT_EQ(f(0, "", 0), 0x00000000u);
  CHECK_INT_EQ(f(0, "123456789", 9), 0xe3069283u);
  CHECK_INT_EQ(f(0, "a", 1), 0xc1d04330u);
  const char *fox = "The quick brown fox jumps over the lazy dog";
  CHECK_INT_EQ(f(0, fox, strlen(fox)), 0x22620404u);

  memset(buf, 0, 32);
  CHECK_INT_EQ(f(0, buf, 32), 0x8a9136aau);
  memset(buf, 0xff, 32);
  CHECK_INT_EQ(f(0, buf, 32), 0x62a8ab43u);
  for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
  CHECK_INT_EQ(f(0, buf, 32), 0x46dd794eu);

  /* bytes (7i + 3) mod 256 for i in 0..999, at every alignment of the start. */
  for (int shift = 0; shift < 8; shift++) {
    for (int i = 0; i < 1000; i++) buf[shift + i] = (uint8_t)(i * 7 + 3);
    CHECK_INT_EQ(f(0, buf + shift, 1000), 0xdd2edff7u);
  }
}

int main(void) {
  printf("crc32c: hardware path %s\n", dt_crc32c_hardware() ? "in use" : "not available");
  check_known(dt_crc32c);
  check_known(dt_crc32c_portable);

  /* Incremental use over every split point equals the one-shot value. */
  uint8_t data[300];
  for (int i = 0; i < 300; i++) data[i] = (uint8_t)(i * 131 + 17);
  uint32_t whole = dt_crc32c(0, data, sizeof data);
  CHECK_INT_EQ(dt_crc32c_portable(0, data, sizeof data), whole);
  int split_mismatches = 0;
  for (size_t cut = 0; cut <= sizeof data; cut++) {
    uint32_t a = dt_crc32c(dt_crc32c(0, data, cut), data + cut, sizeof data - cut);
    uint32_t b = dt_crc32c_portable(dt_crc32c_portable(0, data, cut), data + cut,
                                    sizeof data - cut);
    if (a != whole || b != whole) split_mismatches++;
  }
  CHECK_INT_EQ(split_mismatches, 0);
  /* Mixing the two implementations mid-stream also works: they share the convention. */
  CHECK_INT_EQ(dt_crc32c(dt_crc32c_portable(0, data, 77), data + 77, sizeof data - 77), whole);
  /* Byte-at-a-time equals one-shot. */
  uint32_t c = 0;
  for (size_t i = 0; i < sizeof data; i++) c = dt_crc32c(c, data + i, 1);
  CHECK_INT_EQ(c, whole);

  /* Long buffers, which the hardware path splits into three interleaved blocks and
   * joins: equal to the table path at lengths around the block boundaries (3 x 4096
   * bytes), from every alignment, and when continued from a nonzero CRC. */
  size_t big_len = 40000;
  uint8_t *big = malloc(big_len + 8);
  uint32_t x = 12345;
  for (size_t i = 0; i < big_len + 8; i++) {
    x = x * 1103515245u + 12345u;
    big[i] = (uint8_t)(x >> 16);
  }
  static const size_t lens[] = {12287, 12288, 12289, 12295, 24576, 24583, 36863, 40000};
  int long_mismatches = 0;
  for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
    for (size_t off = 0; off < 8; off++) {
      if (dt_crc32c(0, big + off, lens[l]) != dt_crc32c_portable(0, big + off, lens[l]))
        long_mismatches++;
      if (dt_crc32c(0xdeadbeefu, big + off, lens[l]) !=
          dt_crc32c_portable(0xdeadbeefu, big + off, lens[l]))
        long_mismatches++;
    }
  CHECK_INT_EQ(long_mismatches, 0);
  free(big);

  /* Masking: the TFRecord check value, the mask of 0, and round trips. */
  CHECK_INT_EQ(dt_crc32c_mask(0xe3069283u), 0xc78ab0e5u);
  CHECK_INT_EQ(dt_crc32c_mask(0), 0xa282ead8u);
  CHECK_INT_EQ(dt_crc32c_mask(0x8a9136aau), 0x0fd7fffau);
  CHECK_INT_EQ(dt_crc32c_unmask(0xc78ab0e5u), 0xe3069283u);
  int roundtrip_failures = 0;
  for (uint32_t v = 0, i = 0; i < 1000; i++, v = v * 2654435761u + 12345u)
    if (dt_crc32c_unmask(dt_crc32c_mask(v)) != v) roundtrip_failures++;
  CHECK_INT_EQ(roundtrip_failures, 0);

  return test_summary("test_crc32c");
}
