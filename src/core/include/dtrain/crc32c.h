/* CRC-32C (Castagnoli), the checksum of TFRecord framing (TensorBoard event files) and
 * of our checkpoint manifests.
 *
 * dt_crc32c is incremental in the same way as zlib's crc32(): start from 0 and feed
 * the running value back in, so crc32c(a ++ b) == dt_crc32c(dt_crc32c(0, a), b).
 * It uses the SSE4.2 crc32 instruction when the CPU has it and a slicing-by-8 table
 * otherwise; both give identical results. */
#ifndef DTRAIN_CRC32C_H
#define DTRAIN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 for the start) over n bytes at data; data may be NULL when n == 0. */
uint32_t dt_crc32c(uint32_t crc, const void *data, size_t n);

/* The portable table-driven implementation, always available; exposed so that tests
 * can check it against the hardware path. */
uint32_t dt_crc32c_portable(uint32_t crc, const void *data, size_t n);

/* 1 when dt_crc32c uses the CPU's crc32 instruction, 0 when it uses the tables. */
int dt_crc32c_hardware(void);

/* TFRecord's masking, which keeps a CRC stored next to the data it covers from being
 * a valid CRC of that data: ((c >> 15) | (c << 17)) + 0xa282ead8, modulo 2^32. */
uint32_t dt_crc32c_mask(uint32_t crc);
uint32_t dt_crc32c_unmask(uint32_t masked);

#endif
