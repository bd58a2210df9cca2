/* UTF-8 and the token rules of text datasets (text.c): decoding, lowercasing, what counts
 * as white space and as punctuation, and splitting a text into tokens. Private to src/io. */
#ifndef DTRAIN_IO_TEXT_TOKENS_H
#define DTRAIN_IO_TEXT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at s (s < end) into *cp; returns its length in bytes, or 0 when
 * the bytes there are not valid UTF-8 (a stray continuation byte, a sequence cut short,
 * an overlong form, a surrogate, or a value beyond U+10FFFF). */
size_t dt_utf8_decode(const unsigned char *s, const unsigned char *end, uint32_t *cp);

/* Writes cp as UTF-8 into out (room for 4 bytes); returns the length. */
size_t dt_utf8_encode(uint32_t cp, char *out);

/* The lowercase of cp for ASCII, Latin-1 Supplement, Latin Extended-A, basic Greek and
 * Cyrillic; every other code point is returned as it is. The lowercase is never longer
 * in UTF-8 than cp itself. */
uint32_t dt_text_lower(uint32_t cp);

/* Unicode white space (ASCII's and the space separators). */
bool dt_text_is_space(uint32_t cp);

/* ASCII punctuation (Python's string.punctuation, which Keras strips) and the common
 * Unicode punctuation: Latin-1's (inverted marks, guillemets...), General Punctuation
 * (dashes, curly quotes, ellipsis...), CJK and full-width punctuation. */
bool dt_text_is_punct(uint32_t cp);

/* Splits valid UTF-8 text into tokens one at a time. */
typedef struct {
  const unsigned char *p, *end;
  bool chars; /* every code point a token (else words) */
} dt_tokenizer_t;

/* Writes the next token's bytes (lowercased) into buf, which must have room for the
 * text's length; returns the token's length, or 0 when there are no more tokens. */
size_t dt_tokenizer_next(dt_tokenizer_t *t, char *buf);

#endif
