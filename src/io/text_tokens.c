/* UTF-8 decoding and the token rules of text datasets (see text_tokens.h). The tables are
 * written out from the Unicode charts for the blocks the fortune files of Debian's
 * languages use (Latin-1 Supplement, Latin Extended-A) and a few more that cost a line
 * each (Greek, Cyrillic); the rest of Unicode is taken as it is. */
#include "text_tokens.h"

size_t dt_utf8_decode(const unsigned char *s, const unsigned char *end, uint32_t *cp) {
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
  else return 0; /* a continuation byte, or a lead byte of an overlong or too large form */
  if ((size_t)(end - s) < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

size_t dt_utf8_encode(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

uint32_t dt_text_lower(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  /* Latin-1: À..Þ except the multiplication sign. */
  if (cp >= 0xC0 && cp <= 0xDE) return cp == 0xD7 ? cp : cp + 32;
  if (cp >= 0x100 && cp <= 0x17F) {
    /* Latin Extended-A pairs upper/lower case, even first, except in 0x139..0x148 and
     * 0x179..0x17E (odd first); a few letters stand alone. */
    if (cp == 0x130) return 'i'; /* İ: its full lowercase adds a combining dot */
    if (cp == 0x178) return 0xFF; /* Ÿ -> ÿ */
    if (cp == 0x138 || cp == 0x149 || cp == 0x17F) return cp; /* ĸ, ŉ, ſ */
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
      return cp & 1 ? cp + 1 : cp;
    return cp & 1 ? cp : cp + 1;
  }
  /* Greek capitals (0x3A2 is unassigned) and the accented ones. */
  if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 32;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 63;
  /* Cyrillic: Ѐ..Џ and А..Я. */
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 32;
  return cp;
}

bool dt_text_is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool dt_text_is_punct(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
           (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
  if (cp < 0x100)
    return cp == 0xA1 || cp == 0xA7 || cp == 0xAB || cp == 0xB6 || cp == 0xB7 || cp == 0xBB ||
           cp == 0xBF;
  return cp == 0x37E || cp == 0x387 ||                            /* Greek ; and · */
         (cp >= 0x55A && cp <= 0x55F) || cp == 0x589 ||           /* Armenian */
         cp == 0x60C || cp == 0x61B || cp == 0x61F || cp == 0x6D4 || /* Arabic */
         (cp >= 0x2010 && cp <= 0x2027) || (cp >= 0x2030 && cp <= 0x205E) ||
         (cp >= 0x3001 && cp <= 0x3003) || (cp >= 0x3008 && cp <= 0x3011) ||
         (cp >= 0x3014 && cp <= 0x301F) ||                        /* CJK */
         (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
         (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65); /* full-width */
}

size_t dt_tokenizer_next(dt_tokenizer_t *t, char *buf) {
  size_t n = 0;
  while (t->p < t->end) {
    uint32_t cp;
    size_t len = dt_utf8_decode(t->p, t->end, &cp);
    if (len == 0) len = 1, cp = 0xFFFD; /* the caller validated; never taken */
    t->p += len;
    if (t->chars) return dt_utf8_encode(dt_text_lower(cp), buf);
    if (dt_text_is_space(cp)) {
      if (n) return n;
    } else if (!dt_text_is_punct(cp)) {
      n += dt_utf8_encode(dt_text_lower(cp), buf + n);
    }
  }
  return n;
}
