/* The JSON reader and string quoting (see json.h). */
#include "dtrain/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64 };

typedef struct {
  const char *s;
  size_t len, pos;
  const char *what;
  dt_error_t *err;
} parser_t;

static int fail(parser_t *p, const char *msg) {
  return dt_error_set(p->err, DT_ERR_FORMAT, "%s: bad JSON at byte %zu: %s", p->what, p->pos,
                      msg);
}

static void skip_ws(parser_t *p) {
  while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

static bool literal(parser_t *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return false;
  p->pos += n;
  return true;
}

static int hex4(parser_t *p, unsigned *out) {
  if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return fail(p, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Parses a string literal at p->pos (the opening quote) into a malloc'd value. The
 * unescaped value is never longer than the literal, which bounds the allocation. */
static int parse_string(parser_t *p, char **out) {
  size_t start = ++p->pos, end = start;
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) return fail(p, "unterminated string");
  char *o = malloc(end - start + 1);
  if (!o) return dt_error_set(p->err, DT_ERR_NOMEM, "%s: out of memory", p->what);
  size_t n = 0;
  while (p->pos < end) {
    char c = p->s[p->pos++];
    if ((unsigned char)c < 0x20) {
      free(o);
      return fail(p, "control character in a string");
    }
    if (c != '\\') {
      o[n++] = c;
      continue;
    }
    char e = p->s[p->pos++];
    unsigned cp;
    switch (e) {
      case '"': o[n++] = '"'; break;
      case '\\': o[n++] = '\\'; break;
      case '/': o[n++] = '/'; break;
      case 'b': o[n++] = '\b'; break;
      case 'f': o[n++] = '\f'; break;
      case 'n': o[n++] = '\n'; break;
      case 'r': o[n++] = '\r'; break;
      case 't': o[n++] = '\t'; break;
      case 'u': {
        int rc = hex4(p, &cp);
        if (rc) {
          free(o);
          return rc;
        }
        /* A surrogate pair takes 12 literal bytes and gives 4: it still fits. A high
         * surrogate followed by anything but a low one stays alone (3 bytes, as it
         * comes), and the escape after it is decoded by itself. */
        if (cp >= 0xd800 && cp < 0xdc00 && end - p->pos >= 6 && p->s[p->pos] == '\\' &&
            p->s[p->pos + 1] == 'u') {
          unsigned lo;
          size_t next = p->pos;
          p->pos += 2;
          if ((rc = hex4(p, &lo))) {
            free(o);
            return rc;
          }
          if (lo >= 0xdc00 && lo < 0xe000)
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          else
            p->pos = next;
        }
        n += put_utf8(o + n, cp);
        break;
      }
      default:
        free(o);
        return fail(p, "bad escape in a string");
    }
  }
  o[n] = '\0';
  p->pos = end + 1;
  *out = o;
  return 0;
}

static int parse_value(parser_t *p, dt_json_t *j, int depth);

static int parse_container(parser_t *p, dt_json_t *j, int depth, bool object) {
  char close = object ? '}' : ']';
  p->pos++;
  dt_json_t **tail = &j->child;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
    return 0;
  }
  for (;;) {
    dt_json_t *c = calloc(1, sizeof *c);
    if (!c) return dt_error_set(p->err, DT_ERR_NOMEM, "%s: out of memory", p->what);
    *tail = c;
    tail = &c->next;
    j->count++;
    int rc;
    skip_ws(p);
    if (object) {
      if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a member name");
      if ((rc = parse_string(p, &c->key))) return rc;
      skip_ws(p);
      if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':'");
      p->pos++;
    }
    if ((rc = parse_value(p, c, depth + 1))) return rc;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == close) {
      p->pos++;
      return 0;
    }
    return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_value(parser_t *p, dt_json_t *j, int depth) {
  if (depth > MAX_DEPTH) return fail(p, "nested too deeply");
  skip_ws(p);
  if (p->pos >= p->len) return fail(p, "unexpected end");
  char c = p->s[p->pos];
  if (c == '{' || c == '[') {
    j->type = c == '{' ? DT_JSON_OBJECT : DT_JSON_ARRAY;
    return parse_container(p, j, depth, c == '{');
  }
  if (c == '"') {
    j->type = DT_JSON_STRING;
    return parse_string(p, &j->string);
  }
  if (literal(p, "true") || literal(p, "false")) {
    j->type = DT_JSON_BOOL;
    j->boolean = p->s[p->pos - 1] == 'e' && p->s[p->pos - 2] == 'u';
    return 0;
  }
  if (literal(p, "null")) {
    j->type = DT_JSON_NULL;
    return 0;
  }
  /* A number: copied out so that strtod cannot read past len. */
  size_t start = p->pos;
  while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]) && p->s[p->pos]) p->pos++;
  size_t n = p->pos - start;
  char num[64];
  if (n == 0 || n >= sizeof num) return fail(p, "expected a value");
  memcpy(num, p->s + start, n);
  num[n] = '\0';
  char *end;
  j->type = DT_JSON_NUMBER;
  j->number = strtod(num, &end);
  if (*end || !isfinite(j->number)) {
    p->pos = start;
    return fail(p, "bad number");
  }
  return 0;
}

int dt_json_parse(const char *text, size_t len, const char *what, dt_json_t **out,
                  dt_error_t *err) {
  parser_t p = {text, len, 0, what, err};
  dt_json_t *root = calloc(1, sizeof *root);
  if (!root) return dt_error_set(err, DT_ERR_NOMEM, "%s: out of memory", what);
  int rc = parse_value(&p, root, 0);
  if (!rc) {
    skip_ws(&p);
    if (p.pos != len) rc = fail(&p, "trailing characters");
  }
  if (rc) {
    dt_json_free(root);
    return rc;
  }
  *out = root;
  return 0;
}

void dt_json_free(dt_json_t *j) {
  while (j) {
    dt_json_t *next = j->next;
    dt_json_free(j->child);
    free(j->string);
    free(j->key);
    free(j);
    j = next;
  }
}

const dt_json_t *dt_json_get(const dt_json_t *obj, const char *key) {
  if (!obj || obj->type != DT_JSON_OBJECT) return NULL;
  for (const dt_json_t *c = obj->child; c; c = c->next)
    if (strcmp(c->key, key) == 0) return c;
  return NULL;
}

const dt_json_t *dt_json_get_typed(const dt_json_t *obj, const char *key, dt_json_type type) {
  const dt_json_t *c = dt_json_get(obj, key);
  return c && c->type == type ? c : NULL;
}

size_t dt_json_quote(const char *s, char *buf, size_t cap) {
  size_t n = 0;
#define PUT(ch)                      \
  do {                               \
    if (n + 1 < cap) buf[n] = (ch);  \
    n++;                             \
  } while (0)
  PUT('"');
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') {
      PUT('\\');
      PUT((char)*c);
    } else if (*c == '\n') {
      PUT('\\');
      PUT('n');
    } else if (*c == '\t') {
      PUT('\\');
      PUT('t');
    } else if (*c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", *c);
      for (int i = 0; esc[i]; i++) PUT(esc[i]);
    } else {
      PUT((char)*c);
    }
  }
  PUT('"');
#undef PUT
  if (cap) buf[n < cap ? n : cap - 1] = '\0';
  return n;
}
