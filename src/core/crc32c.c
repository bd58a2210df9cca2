/* CRC-32C (Castagnoli): slicing-by-8 tables, and the SSE4.2 crc32 instruction on x86-64
 * when the CPU reports it. The tables are built once (pthread_once) because writing
 * out 8 KiB of constants would hide the polynomial they come from. */
#define _POSIX_C_SOURCE 200809L
#include "dtrain/crc32c.h"

#include <pthread.h>
#include <string.h>

/* The reflected Castagnoli polynomial 0x1EDC6F41. */
#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int have_hw;

/* The hardware path runs three independent CRCs over three neighbouring blocks of
 * STRIDE bytes: the crc32 instruction takes 3 cycles but can start one per cycle, so
 * one chain uses a third of it. The three results are joined with shift[][]: it moves
 * a CRC register past STRIDE zero bytes (a linear map, applied byte by byte), since
 * crc(A B) = shift(crc(A)) ^ crc_from_zero(B) in the register's own terms. */
enum { STRIDE = 4096 };
static uint32_t shift[4][256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The register moved past STRIDE zero bytes. */
static inline uint32_t shift_stride(uint32_t c) {
  return shift[0][c & 0xff] ^ shift[1][(c >> 8) & 0xff] ^ shift[2][(c >> 16) & 0xff] ^
         shift[3][c >> 24];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DT_CRC32C_X86 1
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                             size_t n) {
  uint64_t c = crc;
  /* Align to 8 bytes so that the 64-bit loads are aligned. */
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = _mm_crc32_u8((uint32_t)c, *p++);
    n--;
  }
  while (n >= 3 * (size_t)STRIDE) {
    uint64_t b = 0, d = 0;
    for (size_t i = 0; i < STRIDE; i += 8) {
      uint64_t w0, w1, w2;
      memcpy(&w0, p + i, 8);
      memcpy(&w1, p + STRIDE + i, 8);
      memcpy(&w2, p + 2 * STRIDE + i, 8);
      c = _mm_crc32_u64(c, w0);
      b = _mm_crc32_u64(b, w1);
      d = _mm_crc32_u64(d, w2);
    }
    c = shift_stride((uint32_t)c) ^ (uint32_t)b;
    c = shift_stride((uint32_t)c) ^ (uint32_t)d;
    p += 3 * STRIDE;
    n -= 3 * STRIDE;
  }
  while (n >= 8) {
    uint64_t word;
    memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8((uint32_t)c, *p++);
    n--;
  }
  return (uint32_t)c;
}
#endif

static void init_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    table[0][i] = c;
  }
  /* table[k][i] is the CRC of byte i followed by k zero bytes: it lets the loop
   * below fold 8 input bytes with 8 independent lookups. */
  for (int i = 0; i < 256; i++) {
    for (int k = 1; k < 8; k++) {
      uint32_t prev = table[k - 1][i];
      table[k][i] = (prev >> 8) ^ table[0][prev & 0xff];
    }
  }
  /* shift[k][v]: byte v at byte k of the register, moved past STRIDE zero bytes, is
   * the XOR of the images of its bits; each bit's image by stepping through zeros. */
  uint32_t image[32];
  for (int bit = 0; bit < 32; bit++) {
    uint32_t c = 1u << bit;
    for (int i = 0; i < STRIDE; i++) c = (c >> 8) ^ table[0][c & 0xff];
    image[bit] = c;
  }
  for (int k = 0; k < 4; k++)
    for (int v = 0; v < 256; v++) {
      uint32_t c = 0;
      for (int b = 0; b < 8; b++)
        if (v >> b & 1) c ^= image[8 * k + b];
      shift[k][v] = c;
    }
#ifdef DT_CRC32C_X86
  __builtin_cpu_init();
  have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

/* Works on the inverted register; callers invert on entry and exit. */
static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n) {
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    n--;
  }
  while (n >= 8) {
    /* Assemble little-endian words byte by byte so the result does not depend on
     * the host's byte order. */
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
    uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                  (uint32_t)p[7] << 24;
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
        table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
        table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    n--;
  }
  return c;
}

uint32_t dt_crc32c_portable(uint32_t crc, const void *data, size_t n) {
  pthread_once(&init_once, init_tables);
  if (n == 0) return crc;
  return ~crc32c_sw(~crc, (const uint8_t *)data, n);
}

uint32_t dt_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&init_once, init_tables);
  if (n == 0) return crc;
#ifdef DT_CRC32C_X86
  if (have_hw) return ~crc32c_hw(~crc, (const uint8_t *)data, n);
#endif
  return ~crc32c_sw(~crc, (const uint8_t *)data, n);
}

int dt_crc32c_hardware(void) {
  pthread_once(&init_once, init_tables);
  return have_hw;
}

uint32_t dt_crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

uint32_t dt_crc32c_unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}
