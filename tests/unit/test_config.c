/* Tests for the INI config parser: syntax, typed getters, overrides, numbered sections,
 * unused-key detection, serialization round trip, and the message of every error. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtrain/config.h"
#include "test_util.h"

/* A config loaded from text under the name "x.ini"; the load must succeed. */
static dt_config_t *load(const char *text) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  int rc = dt_config_load_string(cfg, text, "x.ini", &err);
  CHECK_INT_EQ(rc, 0);
  if (rc) fprintf(stderr, "  unexpected error: %s\n", err.msg);
  return cfg;
}

/* Loading text must fail with code and a message containing needle. */
static void check_load_error(const char *text, int code, const char *needle) {
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  int rc = dt_config_load_string(cfg, text, "x.ini", &err);
  CHECK_INT_EQ(rc, code);
  CHECK_INT_EQ(err.code, code);
  CHECK_STR_CONTAINS(err.msg, needle);
  dt_config_free(cfg);
}

static const char *get_str(dt_config_t *cfg, const char *section, const char *key) {
  const char *v = NULL;
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_get_string(cfg, section, key, NULL, &v, &err), 0);
  return v;
}

static void test_syntax(void) {
  dt_config_t *cfg = load(
      "\xEF\xBB\xBF# leading comment\n"
      "; another comment\n"
      "\n"
      "   [train]   # comment after a header\n"
      "batch_size=32\n"
      "  lr   =   0.01   ; trailing comment\n"
      "name = run#3\n"
      "list = a;b\n"
      "empty =\n"
      "spaced = hello   world  \n"
      "eqs = a=b=c\n"
      "\t\n"
      "[layer.2]\r\n"
      "units = 64\r\n"
      "[train]\n"
      "epochs = 5\n"
      "[ data ]\n"
      "path = /tmp/x # no trailing newline");
  CHECK(strcmp(get_str(cfg, "train", "batch_size"), "32") == 0);
  CHECK(strcmp(get_str(cfg, "train", "lr"), "0.01") == 0);
  CHECK(strcmp(get_str(cfg, "train", "name"), "run#3") == 0);
  CHECK(strcmp(get_str(cfg, "train", "list"), "a;b") == 0);
  CHECK(strcmp(get_str(cfg, "train", "empty"), "") == 0);
  CHECK(strcmp(get_str(cfg, "train", "spaced"), "hello   world") == 0);
  CHECK(strcmp(get_str(cfg, "train", "eqs"), "a=b=c") == 0);
  CHECK(strcmp(get_str(cfg, "layer.2", "units"), "64") == 0);
  /* The repeated [train] header continued the section. */
  CHECK(strcmp(get_str(cfg, "train", "epochs"), "5") == 0);
  CHECK(strcmp(get_str(cfg, "data", "path"), "/tmp/x") == 0);

  CHECK(dt_config_has_section(cfg, "train"));
  CHECK(dt_config_has_section(cfg, "layer.2"));
  CHECK(!dt_config_has_section(cfg, "layer"));
  CHECK(dt_config_has_key(cfg, "train", "lr"));
  CHECK(!dt_config_has_key(cfg, "train", "units"));
  CHECK(!dt_config_has_key(cfg, "nosuch", "lr"));

  CHECK(strcmp(dt_config_where(cfg, "train", "batch_size"), "x.ini:5") == 0);
  CHECK(strcmp(dt_config_where(cfg, "layer.2", "units"), "x.ini:14") == 0);
  CHECK(strcmp(dt_config_where(cfg, "train", "epochs"), "x.ini:16") == 0);
  CHECK(strcmp(dt_config_where(cfg, "train", "nosuch"), "x.ini [train]") == 0);
  CHECK(strcmp(dt_config_where(cfg, "nosuch", "x"), "x.ini") == 0);
  dt_config_free(cfg);

  /* An empty text and a text of comments are valid, empty configs. */
  cfg = load("");
  CHECK(!dt_config_has_section(cfg, "train"));
  CHECK(strcmp(dt_config_where(cfg, "train", "lr"), "x.ini") == 0);
  dt_config_free(cfg);
  cfg = load("# only\n;comments\n\n");
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);

  /* A config never loaded from anywhere still answers where. */
  cfg = dt_config_new();
  CHECK(dt_config_where(cfg, "a", "b") != NULL);
  dt_config_free(cfg);
}

static void test_getters(void) {
  dt_config_t *cfg = load(
      "[train]\n"
      "batch_size = 64\n"
      "neg = -3\n"
      "plus = +7\n"
      "lr = 1e-3\n"
      "mom = 0.9\n"
      "b1 = True\n"
      "b2 = no\n"
      "b3 = ON\n"
      "b4 = 0\n"
      "b5 = 1\n"
      "b6 = off\n"
      "b7 = yes\n"
      "b8 = FALSE\n"
      "opt = adam\n"
      "shape = 28, 28 ,1\n"
      "one = 5\n"
      "none =\n"
      "name = fashion\n");
  dt_error_t err = {0};
  long l = 0;
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "batch_size", 1, 1, 1000000, &l, &err), 0);
  CHECK_INT_EQ(l, 64);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "neg", 0, -10, 10, &l, &err), 0);
  CHECK_INT_EQ(l, -3);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "plus", 0, 0, 10, &l, &err), 0);
  CHECK_INT_EQ(l, 7);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "missing", 17, 1, 100, &l, &err), 0);
  CHECK_INT_EQ(l, 17);
  CHECK_INT_EQ(dt_config_get_int(cfg, "nosection", "x", -2, -5, 5, &l, &err), 0);
  CHECK_INT_EQ(l, -2);
  /* The bounds are inclusive. */
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "batch_size", 1, 64, 64, &l, &err), 0);

  double d = 0;
  CHECK_INT_EQ(dt_config_get_double(cfg, "train", "lr", 0.1, 0, 1, &d, &err), 0);
  CHECK_NEAR(d, 1e-3, 1e-15);
  CHECK_INT_EQ(dt_config_get_double(cfg, "train", "mom", 0, 0, 1, &d, &err), 0);
  CHECK_NEAR(d, 0.9, 1e-15);
  CHECK_INT_EQ(dt_config_get_double(cfg, "train", "batch_size", 0, 0, 100, &d, &err), 0);
  CHECK_NEAR(d, 64.0, 0);
  CHECK_INT_EQ(dt_config_get_double(cfg, "train", "missing", 0.25, 0, 1, &d, &err), 0);
  CHECK_NEAR(d, 0.25, 0);

  static const char *const bool_keys[] = {"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"};
  static const bool bool_want[] = {true, false, true, false, true, false, true, false};
  for (int i = 0; i < 8; i++) {
    bool b = !bool_want[i];
    CHECK_INT_EQ(dt_config_get_bool(cfg, "train", bool_keys[i], !bool_want[i], &b, &err), 0);
    CHECK_INT_EQ(b, bool_want[i]);
  }
  bool b = false;
  CHECK_INT_EQ(dt_config_get_bool(cfg, "train", "missing", true, &b, &err), 0);
  CHECK_INT_EQ(b, true);

  static const char *const opts[] = {"sgd", "adam", "rmsprop", "adadelta", NULL};
  int c = -5;
  CHECK_INT_EQ(dt_config_get_choice(cfg, "train", "opt", "sgd", opts, &c, &err), 0);
  CHECK_INT_EQ(c, 1);
  CHECK_INT_EQ(dt_config_get_choice(cfg, "train", "missing", "rmsprop", opts, &c, &err), 0);
  CHECK_INT_EQ(c, 2);
  CHECK_INT_EQ(dt_config_get_choice(cfg, "train", "missing", NULL, opts, &c, &err), 0);
  CHECK_INT_EQ(c, -1);
  /* A default outside the choices is the caller's bug. */
  CHECK_INT_EQ(dt_config_get_choice(cfg, "train", "missing", "adamw", opts, &c, &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "default 'adamw' is not one of sgd, adam, rmsprop, adadelta");

  int list[4] = {0};
  int n = -1;
  CHECK_INT_EQ(dt_config_get_int_list(cfg, "train", "shape", list, 4, &n, &err), 0);
  CHECK_INT_EQ(n, 3);
  CHECK_INT_EQ(list[0], 28);
  CHECK_INT_EQ(list[1], 28);
  CHECK_INT_EQ(list[2], 1);
  CHECK_INT_EQ(dt_config_get_int_list(cfg, "train", "shape", list, 3, &n, &err), 0);
  CHECK_INT_EQ(n, 3);
  CHECK_INT_EQ(dt_config_get_int_list(cfg, "train", "one", list, 4, &n, &err), 0);
  CHECK_INT_EQ(n, 1);
  CHECK_INT_EQ(list[0], 5);
  CHECK_INT_EQ(dt_config_get_int_list(cfg, "train", "none", list, 4, &n, &err), 0);
  CHECK_INT_EQ(n, 0);
  CHECK_INT_EQ(dt_config_get_int_list(cfg, "train", "missing", list, 4, &n, &err), 0);
  CHECK_INT_EQ(n, 0);

  const char *s = NULL;
  CHECK_INT_EQ(dt_config_get_string(cfg, "train", "name", "x", &s, &err), 0);
  CHECK(strcmp(s, "fashion") == 0);
  CHECK_INT_EQ(dt_config_get_string(cfg, "train", "missing", "dflt", &s, &err), 0);
  CHECK(strcmp(s, "dflt") == 0);
  CHECK_INT_EQ(dt_config_get_string(cfg, "train", "missing", NULL, &s, &err), 0);
  CHECK(s == NULL);

  /* Every key above was read by some getter. */
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);
}

static void test_overrides(void) {
  dt_config_t *cfg = load("[train]\nlr = 0.1\nepochs = 3\n[layer.2]\nunits = 32\n");
  dt_error_t err = {0};
  const char *old = get_str(cfg, "train", "lr");
  const char *old_where = dt_config_where(cfg, "train", "lr");
  CHECK(strcmp(old_where, "x.ini:2") == 0);

  CHECK_INT_EQ(dt_config_override(cfg, "train.lr=0.5", &err), 0);
  CHECK(strcmp(get_str(cfg, "train", "lr"), "0.5") == 0);
  CHECK(strcmp(dt_config_where(cfg, "train", "lr"), "--set train.lr") == 0);
  /* Pointers handed out before the override stay valid (ASan would catch it). */
  CHECK(strcmp(old, "0.1") == 0);
  CHECK(strcmp(old_where, "x.ini:2") == 0);

  /* Replace again, with spaces around the parts and a trailing comment. */
  CHECK_INT_EQ(dt_config_override(cfg, " train.lr = 0.25  # why", &err), 0);
  CHECK(strcmp(get_str(cfg, "train", "lr"), "0.25") == 0);

  /* Add a key to an existing section, and to a new dotted section. */
  CHECK_INT_EQ(dt_config_override(cfg, "train.momentum=0.9", &err), 0);
  CHECK(strcmp(get_str(cfg, "train", "momentum"), "0.9") == 0);
  CHECK_INT_EQ(dt_config_override(cfg, "layer.2.units=64", &err), 0);
  CHECK(strcmp(get_str(cfg, "layer.2", "units"), "64") == 0);
  CHECK(strcmp(dt_config_where(cfg, "layer.2", "units"), "--set layer.2.units") == 0);
  CHECK_INT_EQ(dt_config_override(cfg, "layer.3.type=dense", &err), 0);
  CHECK(dt_config_has_section(cfg, "layer.3"));
  CHECK(strcmp(get_str(cfg, "layer.3", "type"), "dense") == 0);
  CHECK(strcmp(dt_config_where(cfg, "layer.3", "nosuch"), "--set layer.3.type [layer.3]") == 0);

  /* The value may contain '=' and may be empty. */
  CHECK_INT_EQ(dt_config_override(cfg, "data.path=a=b", &err), 0);
  CHECK(strcmp(get_str(cfg, "data", "path"), "a=b") == 0);
  CHECK_INT_EQ(dt_config_override(cfg, "data.empty=", &err), 0);
  CHECK(strcmp(get_str(cfg, "data", "empty"), "") == 0);

  long l = 0;
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 100, &l, &err), 0);
  CHECK_INT_EQ(l, 3);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);

  /* A bad value set by --set is reported at the --set location. */
  CHECK_INT_EQ(dt_config_override(cfg, "train.batch_size=12abc", &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "batch_size", 1, 1, 100, &l, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg,
                     "--set train.batch_size: [train] batch_size = '12abc': not an integer");
  dt_config_free(cfg);

  /* Overrides into an empty config (no file at all). */
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_override(cfg, "a.b=c", &err), 0);
  CHECK(strcmp(get_str(cfg, "a", "b"), "c") == 0);
  dt_config_free(cfg);
}

static void test_numbered_sections(void) {
  dt_config_t *cfg = load(
      "[layer.10]\nunits = 10\n"
      "[layer.2]\nunits = 2\n"
      "[layers]\nx = 1\n"
      "[layer]\ny = 2\n"
      "[layer.1]\nunits = 1\n"
      "[other.5]\n");
  dt_error_t err = {0};
  const char *names[8] = {0};
  int count = -1;
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", names, 8, &count, &err), 0);
  CHECK_INT_EQ(count, 3);
  CHECK(names[0] && strcmp(names[0], "layer.1") == 0);
  CHECK(names[1] && strcmp(names[1], "layer.2") == 0);
  CHECK(names[2] && strcmp(names[2], "layer.10") == 0);
  CHECK(names[3] == NULL);

  /* With less room, count is still the total and only max names are written. */
  const char *two[3] = {0};
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", two, 2, &count, &err), 0);
  CHECK_INT_EQ(count, 3);
  CHECK(two[1] && strcmp(two[1], "layer.2") == 0);
  CHECK(two[2] == NULL);
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", NULL, 0, &count, &err), 0);
  CHECK_INT_EQ(count, 3);
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "nothing.", names, 8, &count, &err), 0);
  CHECK_INT_EQ(count, 0);
  dt_config_free(cfg);

  /* An override can add a numbered section, and it sorts in. */
  cfg = load("[layer.3]\nunits = 3\n");
  CHECK_INT_EQ(dt_config_override(cfg, "layer.1.units=1", &err), 0);
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", names, 8, &count, &err), 0);
  CHECK_INT_EQ(count, 2);
  CHECK(strcmp(names[0], "layer.1") == 0);
  CHECK(strcmp(names[1], "layer.3") == 0);
  dt_config_free(cfg);
}

static void test_check_unused(void) {
  dt_error_t err = {0};
  long l;
  const char *s;

  /* An unused key in a section that was asked about. */
  dt_config_t *cfg = load(
      "[train]\nepochs = 2\n\n"
      "[layer.2]\n"
      "type = dense\n"
      "# a comment\n"
      "unit = 64\n"
      "units = 64\n");
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_get_string(cfg, "layer.2", "type", NULL, &s, &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "layer.2", "units", 1, 1, 1000, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:7: unknown key 'unit' in [layer.2]");
  dt_config_free(cfg);

  /* A section nobody asked about. */
  cfg = load("[train]\nepochs = 2\n[fooo]\n\nbar = 1\nbaz = 2\n");
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:5: unknown section [fooo]");
  dt_config_free(cfg);

  /* A getter that found nothing still makes its section known: then the key is the
   * unknown thing. has_key does not consume the key. */
  cfg = load("[train]\nbogus = 1\n");
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 10, &l, &err), 0);
  CHECK(dt_config_has_key(cfg, "train", "bogus"));
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:2: unknown key 'bogus' in [train]");
  dt_config_free(cfg);

  /* Overrides come after the file entries. */
  cfg = load("[train]\nepochs = 2\n");
  CHECK_INT_EQ(dt_config_override(cfg, "train.bogus=1", &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "--set train.bogus: unknown key 'bogus' in [train]");
  CHECK_INT_EQ(dt_config_override(cfg, "zzz.k=1", &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "bogus", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "--set zzz.k: unknown section [zzz]");
  dt_config_free(cfg);

  /* An empty header nobody asked about, reported in file order before a later key. */
  cfg = load("[train]\nepochs = 2\n[augment]\n[data]\nx = 1\n");
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:2: unknown section [train]");
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:3: unknown section [augment]");
  CHECK(dt_config_has_section(cfg, "augment"));
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:5: unknown section [data]");
  CHECK_INT_EQ(dt_config_get_int(cfg, "data", "x", 1, 1, 10, &l, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);

  /* Listing numbered sections makes them known. */
  cfg = load("[layer.1]\ntype = dense\nunitz = 3\n");
  const char *names[2];
  int count;
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", names, 2, &count, &err), 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:2: unknown key 'type' in [layer.1]");
  dt_config_free(cfg);
}

/* Every key of a must be in b with the same value, and the other way round. */
static void check_same_config(dt_config_t *a, dt_config_t *b, const char *const *sections,
                              const char *const *keys) {
  for (int i = 0; sections[i]; i++) {
    CHECK(dt_config_has_section(b, sections[i]));
    const char *va = get_str(a, sections[i], keys[i]);
    const char *vb = get_str(b, sections[i], keys[i]);
    CHECK(va && vb && strcmp(va, vb) == 0);
    if (va && vb && strcmp(va, vb) != 0)
      fprintf(stderr, "  [%s] %s: '%s' vs '%s'\n", sections[i], keys[i], va, vb);
  }
}

static void test_to_string(void) {
  dt_config_t *cfg = load(
      "[train]\n"
      "lr = 0.1\n"
      "tag=#hash\n"
      "semi=;x\n"
      "empty =\n"
      "[layer.1]\n"
      "units = 8\n"
      "[empty_section]\n"
      "[train]\n"
      "epochs = 4\n");
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_override(cfg, "train.lr=0.5", &err), 0);
  CHECK_INT_EQ(dt_config_override(cfg, "layer.2.units=16", &err), 0);

  size_t need = dt_config_to_string(cfg, NULL, 0);
  char *text = malloc(need + 1);
  CHECK_INT_EQ(dt_config_to_string(cfg, text, need + 1), need);
  CHECK_INT_EQ(strlen(text), need);
  const char *want =
      "[train]\n"
      "lr = 0.5\n"
      "tag =#hash\n"
      "semi =;x\n"
      "empty =\n"
      "epochs = 4\n"
      "\n"
      "[layer.1]\n"
      "units = 8\n"
      "\n"
      "[empty_section]\n"
      "\n"
      "[layer.2]\n"
      "units = 16\n";
  CHECK(strcmp(text, want) == 0);
  if (strcmp(text, want) != 0) fprintf(stderr, "  got:\n%s\n", text);

  dt_config_t *again = load(text);
  static const char *const sections[] = {"train", "train",   "train",   "train",
                                         "train", "layer.1", "layer.2", NULL};
  static const char *const keys[] = {"lr", "tag", "semi", "empty", "epochs", "units", "units"};
  check_same_config(cfg, again, sections, keys);
  CHECK(dt_config_has_section(again, "empty_section"));
  /* And it serializes to the same text. */
  char *text2 = malloc(need + 1);
  CHECK_INT_EQ(dt_config_to_string(again, text2, need + 1), need);
  CHECK(strcmp(text, text2) == 0);
  free(text2);
  dt_config_free(again);

  /* A short buffer is truncated but NUL-terminated, and the full length returned. */
  char small[10];
  memset(small, 'z', sizeof small);
  CHECK_INT_EQ(dt_config_to_string(cfg, small, sizeof small), need);
  CHECK_INT_EQ(strlen(small), sizeof small - 1);
  CHECK(strncmp(small, text, sizeof small - 1) == 0);
  char one[1] = {'z'};
  CHECK_INT_EQ(dt_config_to_string(cfg, one, 1), need);
  CHECK_INT_EQ(one[0], '\0');
  free(text);
  dt_config_free(cfg);

  cfg = dt_config_new();
  char buf[4] = "zz";
  CHECK_INT_EQ(dt_config_to_string(cfg, buf, sizeof buf), 0);
  CHECK_INT_EQ(buf[0], '\0');
  dt_config_free(cfg);
}

/* Records what dt_config_foreach visits as "section.key=value;" and stops after `limit`. */
typedef struct {
  char seen[256];
  int calls, limit;
} visit_t;

static int visit(void *ctx, const char *section, const char *key, const char *value) {
  visit_t *v = ctx;
  size_t used = strlen(v->seen);
  snprintf(v->seen + used, sizeof v->seen - used, "%s.%s=%s;", section, key, value);
  return ++v->calls == v->limit ? 7 : 0;
}

static void test_foreach(void) {
  dt_config_t *cfg = load(
      "[train]\n"
      "lr = 0.1\n"
      "[layer.1]\n"
      "units = 8\n"
      "[train]\n"
      "epochs = 4\n");
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_override(cfg, "train.lr=0.5", &err), 0);
  /* Section by section in order of first appearance, overrides in place. */
  visit_t v = {.limit = -1};
  CHECK_INT_EQ(dt_config_foreach(cfg, visit, &v), 0);
  CHECK_INT_EQ(v.calls, 3);
  CHECK(strcmp(v.seen, "train.lr=0.5;train.epochs=4;layer.1.units=8;") == 0);
  if (strcmp(v.seen, "train.lr=0.5;train.epochs=4;layer.1.units=8;") != 0)
    fprintf(stderr, "foreach visited: %s\n", v.seen);
  /* A non-zero result stops the walk and is returned. */
  visit_t stop = {.limit = 2};
  CHECK_INT_EQ(dt_config_foreach(cfg, visit, &stop), 7);
  CHECK_INT_EQ(stop.calls, 2);
  /* Visiting marks nothing as used. */
  CHECK(dt_config_check_unused(cfg, &err) != 0);
  CHECK_STR_CONTAINS(err.msg, "unknown");
  dt_config_free(cfg);
}

static void test_syntax_errors(void) {
  check_load_error("[train]\nlr = 1\n\n\n\n\nthis is not an entry\n", DT_ERR_CONFIG,
                   "x.ini:7: expected 'key = value' or '[section]', got 'this is not an entry'");
  check_load_error("[train]\n= 5\n", DT_ERR_CONFIG,
                   "x.ini:2: expected 'key = value' or '[section]', got '= 5'");
  check_load_error("[train\nlr = 1\n", DT_ERR_CONFIG,
                   "x.ini:1: unclosed '[' in section header '[train'");
  check_load_error("[a]\n[train] extra\n", DT_ERR_CONFIG, "x.ini:2: unexpected text after ']'");
  check_load_error("[ ]\n", DT_ERR_CONFIG, "x.ini:1: bad section name '[]'");
  check_load_error("[a=b]\n", DT_ERR_CONFIG, "x.ini:1: bad section name '[a=b]'");
  check_load_error("[train]\nlr = 1\nepochs = 2\n\nlr = 2\n", DT_ERR_CONFIG,
                   "x.ini:5: duplicate key 'lr' in [train] (first set at x.ini:2)");
  /* Also across a repeated header. */
  check_load_error("[train]\nlr = 1\n[data]\n[train]\nlr = 2\n", DT_ERR_CONFIG,
                   "x.ini:5: duplicate key 'lr' in [train] (first set at x.ini:2)");
  check_load_error("lr = 1\n", DT_ERR_CONFIG,
                   "x.ini:1: key 'lr' comes before any [section] header");
  check_load_error("[train]\nbatch size = 3\n", DT_ERR_CONFIG, "x.ini:2: bad key 'batch size'");
  check_load_error("[train]\nlr.x = 3\n", DT_ERR_CONFIG, "x.ini:2: bad key 'lr.x'");

  /* Long lines are clipped in the message. */
  char longline[400];
  memset(longline, 'q', sizeof longline - 1);
  longline[sizeof longline - 1] = '\0';
  dt_config_t *cfg = dt_config_new();
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_load_string(cfg, longline, "x.ini", &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:1: expected 'key = value' or '[section]', got 'qqq");
  CHECK_STR_CONTAINS(err.msg, "qqq...'");
  CHECK(strlen(err.msg) < 200);
  dt_config_free(cfg);

  /* Loading with a NULL origin still names something. */
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_string(cfg, "junk\n", NULL, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "<string>:1:");
  dt_config_free(cfg);
}

/* The getter on cfg must fail with DT_ERR_CONFIG and a message containing needle. */
static void check_msg(int rc, const dt_error_t *err, const char *needle) {
  CHECK_INT_EQ(rc, DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err->msg, needle);
}

static void test_value_errors(void) {
  dt_config_t *cfg = load(
      "[train]\n"
      "a = 12abc\n"
      "b =\n"
      "c = 1e999\n"
      "d = nan\n"
      "e = -5\n"
      "f = 99999999999999999999999\n"
      "g = 1.5\n"
      "h = maybe\n"
      "i = inf\n"
      "j = 0x\n"
      "[optimizer]\n"
      "type = adamw\n"
      "[data]\n"
      "s1 = 28,,1\n"
      "s2 = 28,1,\n"
      "s3 = 1,2,3,4\n"
      "s4 = 1,0\n"
      "s5 = 1,-2\n"
      "s6 = 1,x\n"
      "s7 = 99999999999\n"
      "s8 = ,\n"
      "s9 = 1 2\n");
  dt_error_t err = {0};
  long l = 42;
  double d = 42;
  check_msg(dt_config_get_int(cfg, "train", "a", 1, 1, 1000000, &l, &err), &err,
            "x.ini:2: [train] a = '12abc': not an integer");
  CHECK_INT_EQ(l, 42); /* untouched on error */
  check_msg(dt_config_get_int(cfg, "train", "b", 1, 1, 1000000, &l, &err), &err,
            "x.ini:3: [train] b = '': not an integer");
  check_msg(dt_config_get_int(cfg, "train", "c", 1, 1, 1000000, &l, &err), &err,
            "x.ini:4: [train] c = '1e999': not an integer");
  check_msg(dt_config_get_int(cfg, "train", "e", 1, 1, 1000000, &l, &err), &err,
            "x.ini:6: [train] e = -5: must be between 1 and 1000000");
  check_msg(dt_config_get_int(cfg, "train", "f", 1, 1, 1000000, &l, &err), &err,
            "x.ini:7: [train] f = 99999999999999999999999: must be between 1 and 1000000");
  check_msg(dt_config_get_int(cfg, "train", "g", 1, 1, 10, &l, &err), &err,
            "x.ini:8: [train] g = '1.5': not an integer");

  check_msg(dt_config_get_double(cfg, "train", "a", 1, 0, 1, &d, &err), &err,
            "x.ini:2: [train] a = '12abc': not a number");
  check_msg(dt_config_get_double(cfg, "train", "b", 1, 0, 1, &d, &err), &err,
            "x.ini:3: [train] b = '': not a number");
  check_msg(dt_config_get_double(cfg, "train", "c", 1, 0, 1, &d, &err), &err,
            "x.ini:4: [train] c = '1e999': not a finite number");
  check_msg(dt_config_get_double(cfg, "train", "d", 1, 0, 1, &d, &err), &err,
            "x.ini:5: [train] d = 'nan': not a finite number");
  check_msg(dt_config_get_double(cfg, "train", "i", 1, 0, 1, &d, &err), &err,
            "x.ini:10: [train] i = 'inf': not a finite number");
  check_msg(dt_config_get_double(cfg, "train", "j", 1, 0, 1, &d, &err), &err,
            "x.ini:11: [train] j = '0x': not a number");
  check_msg(dt_config_get_double(cfg, "train", "g", 1, 0, 1, &d, &err), &err,
            "x.ini:8: [train] g = 1.5: must be between 0 and 1");
  check_msg(dt_config_get_double(cfg, "train", "e", 1, 1e-6, 0.5, &d, &err), &err,
            "x.ini:6: [train] e = -5: must be between 1e-06 and 0.5");
  CHECK_NEAR(d, 42, 0);

  bool b = false;
  check_msg(dt_config_get_bool(cfg, "train", "h", false, &b, &err), &err,
            "x.ini:9: [train] h = 'maybe': expected true/false, yes/no, on/off or 1/0");
  check_msg(dt_config_get_bool(cfg, "train", "b", false, &b, &err), &err,
            "x.ini:3: [train] b = '': expected");

  static const char *const opts[] = {"sgd", "adam", "rmsprop", "adadelta", NULL};
  int c = 7;
  check_msg(dt_config_get_choice(cfg, "optimizer", "type", "sgd", opts, &c, &err), &err,
            "x.ini:13: [optimizer] type = 'adamw': expected one of sgd, adam, rmsprop, adadelta");
  CHECK_INT_EQ(c, 7);

  int list[3];
  int n = 9;
  check_msg(dt_config_get_int_list(cfg, "data", "s1", list, 3, &n, &err), &err,
            "x.ini:15: [data] s1 = '28,,1': element 2 is empty");
  CHECK_INT_EQ(n, 0);
  check_msg(dt_config_get_int_list(cfg, "data", "s2", list, 3, &n, &err), &err,
            "x.ini:16: [data] s2 = '28,1,': element 3 is empty");
  check_msg(dt_config_get_int_list(cfg, "data", "s3", list, 3, &n, &err), &err,
            "x.ini:17: [data] s3 = '1,2,3,4': more than 3 values");
  check_msg(dt_config_get_int_list(cfg, "data", "s4", list, 3, &n, &err), &err,
            "x.ini:18: [data] s4 = '1,0': element 2 ('0') is not a positive integer");
  check_msg(dt_config_get_int_list(cfg, "data", "s5", list, 3, &n, &err), &err,
            "element 2 ('-2') is not a positive integer");
  check_msg(dt_config_get_int_list(cfg, "data", "s6", list, 3, &n, &err), &err,
            "element 2 ('x') is not a positive integer");
  check_msg(dt_config_get_int_list(cfg, "data", "s7", list, 3, &n, &err), &err,
            "element 1 ('99999999999') is not a positive integer");
  check_msg(dt_config_get_int_list(cfg, "data", "s8", list, 3, &n, &err), &err,
            "element 1 is empty");
  check_msg(dt_config_get_int_list(cfg, "data", "s9", list, 3, &n, &err), &err,
            "element 1 ('1 2') is not a positive integer");
  dt_config_free(cfg);
}

static void test_override_errors(void) {
  dt_config_t *cfg = load("[train]\nlr = 1\n");
  dt_error_t err = {0};
  static const char *const bad[] = {"foo",   "train.lr", "trainlr=5", "train.=5",
                                    ".lr=5", "=5",       "",          "# train.lr=5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    dt_error_clear(&err);
    CHECK_INT_EQ(dt_config_override(cfg, bad[i], &err), DT_ERR_ARG);
    char want[128];
    snprintf(want, sizeof want, "--set '%s': expected section.key=value", bad[i]);
    CHECK_STR_CONTAINS(err.msg, want);
  }
  CHECK_INT_EQ(dt_config_override(cfg, "train.batch size=5", &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "--set 'train.batch size=5': bad section or key name");
  CHECK_INT_EQ(dt_config_override(cfg, "[x].y=5", &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "--set '[x].y=5': bad section or key name");
  /* Keys and sections that would print as comments (issue 14, defect 12). */
  static const char *const commented[] = {"train.;lr=5", "train.#lr=5"};
  for (size_t i = 0; i < sizeof commented / sizeof commented[0]; i++) {
    CHECK_INT_EQ(dt_config_override(cfg, commented[i], &err), DT_ERR_ARG);
    CHECK_STR_CONTAINS(err.msg, "bad section or key name");
  }
  CHECK_INT_EQ(dt_config_override(cfg, "train.lr=1\n[evil]", &err), DT_ERR_ARG);
  CHECK_STR_CONTAINS(err.msg, "a value may not contain a line break");
  /* Failed overrides changed nothing. */
  CHECK(strcmp(get_str(cfg, "train", "lr"), "1") == 0);
  CHECK(!dt_config_has_section(cfg, "evil"));
  CHECK(!dt_config_has_key(cfg, "train", "batch size"));
  dt_config_free(cfg);
}

static void test_numbered_errors(void) {
  static const char *const texts[] = {
      "[layer.1]\n[layer.x]\nunits = 3\n",
      "[layer.1]\n[layer.0]\n",
      "[layer.1]\n[layer.]\n",
      "[layer.1]\n[layer.-2]\n",
      "[layer.1]\n[layer.2.1]\n",
      "[layer.1]\n[layer.99999999999999999999999]\n",
  };
  static const char *const names[] = {"layer.x",  "layer.0",   "layer.",
                                      "layer.-2", "layer.2.1", "layer.99999999999999999999999"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    dt_config_t *cfg = load(texts[i]);
    dt_error_t err = {0};
    const char *out[4];
    int count = -1;
    CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", out, 4, &count, &err), DT_ERR_CONFIG);
    char want[160];
    snprintf(want, sizeof want,
             "x.ini:2: section [%s]: expected [layer.N] with N a positive integer", names[i]);
    CHECK_STR_CONTAINS(err.msg, want);
    CHECK_INT_EQ(count, 0);
    dt_config_free(cfg);
  }

  /* A bad section made by --set is named by its --set location. */
  dt_config_t *cfg = load("[layer.1]\n");
  dt_error_t err = {0};
  CHECK_INT_EQ(dt_config_override(cfg, "layer.two.units=3", &err), 0);
  int count;
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", NULL, 0, &count, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "--set layer.two.units: section [layer.two]");
  dt_config_free(cfg);

  /* The only way to get the same number twice is a different spelling. */
  cfg = load("[layer.1]\nunits = 1\n[layer.2]\n[layer.01]\nunits = 2\n");
  CHECK_INT_EQ(dt_config_numbered_sections(cfg, "layer.", NULL, 0, &count, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg,
                     "x.ini:4: section [layer.01] has the same number as [layer.1] (x.ini:1)");
  dt_config_free(cfg);
}

/* Writes n bytes of text to dir/name; returns the path (malloc'd). */
static char *write_file(const char *dir, const char *name, const char *text, size_t n) {
  size_t len = strlen(dir) + strlen(name) + 2;
  char *path = malloc(len);
  snprintf(path, len, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    CHECK_INT_EQ(fwrite(text, 1, n, f), n);
    fclose(f);
  }
  return path;
}

static void test_files(void) {
  char dir[] = "/tmp/dtrain_test_config_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  dt_error_t err = {0};

  /* A normal file: locations name the path. */
  const char *text = "# run\n[train]\nlr = 0.1\n\n[data]\nbatch = 8\n";
  char *good = write_file(dir, "good.ini", text, strlen(text));
  dt_config_t *cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_file(cfg, good, &err), 0);
  char want[512];
  snprintf(want, sizeof want, "%s:6", good);
  CHECK(strcmp(dt_config_where(cfg, "data", "batch"), want) == 0);
  CHECK(strcmp(dt_config_where(cfg, "nosuch", "x"), good) == 0);
  long l;
  CHECK_INT_EQ(dt_config_get_int(cfg, "data", "batch", 1, 1, 100, &l, &err), 0);
  CHECK_INT_EQ(l, 8);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  /* [train] was never asked about, so the whole section is unknown. */
  snprintf(want, sizeof want, "%s:3: unknown section [train]", good);
  CHECK_STR_CONTAINS(err.msg, want);

  /* A second file into the same config: a key repeated across files is a duplicate. */
  const char *text2 = "[train]\nlr = 0.2\n";
  char *second = write_file(dir, "second.ini", text2, strlen(text2));
  CHECK_INT_EQ(dt_config_load_file(cfg, second, &err), DT_ERR_CONFIG);
  snprintf(want, sizeof want, "%s:2: duplicate key 'lr' in [train] (first set at %s:3)", second,
           good);
  CHECK_STR_CONTAINS(err.msg, want);
  dt_config_free(cfg);

  /* Lines of any length, with no final newline. */
  size_t big = 200000;
  char *long_text = malloc(big + 32);
  strcpy(long_text, "[data]\npath = ");
  size_t off = strlen(long_text);
  memset(long_text + off, 'p', big);
  long_text[off + big] = '\0';
  char *long_path = write_file(dir, "long.ini", long_text, strlen(long_text));
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_file(cfg, long_path, &err), 0);
  const char *v = get_str(cfg, "data", "path");
  CHECK(v && strlen(v) == big);
  dt_config_free(cfg);

  /* Many keys and sections (the hash index grows). */
  size_t many = 5000, cap = many * 48, len = 0;
  char *many_text = malloc(cap);
  for (size_t i = 0; i < many; i++) {
    if (i % 10 == 0) len += (size_t)snprintf(many_text + len, cap - len, "[s%zu]\n", i / 10);
    len += (size_t)snprintf(many_text + len, cap - len, "k%zu = %zu\n", i, i);
  }
  char *many_path = write_file(dir, "many.ini", many_text, len);
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_file(cfg, many_path, &err), 0);
  int wrong = 0;
  for (size_t i = 0; i < many; i++) {
    char sec[32], key[32];
    snprintf(sec, sizeof sec, "s%zu", i / 10);
    snprintf(key, sizeof key, "k%zu", i);
    long got = -1;
    if (dt_config_get_int(cfg, sec, key, -1, 0, 1000000, &got, &err) != 0 || got != (long)i)
      wrong++;
  }
  CHECK_INT_EQ(wrong, 0);
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), 0);
  dt_config_free(cfg);

  /* A NUL byte inside a file. */
  char *nul_path = write_file(dir, "nul.ini", "[a]\nx = 1\0\n", 11);
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_file(cfg, nul_path, &err), DT_ERR_CONFIG);
  snprintf(want, sizeof want, "%s:2: line contains a NUL byte", nul_path);
  CHECK_STR_CONTAINS(err.msg, want);
  dt_config_free(cfg);

  /* A missing file, and a directory. */
  snprintf(want, sizeof want, "%s/missing.ini", dir);
  cfg = dt_config_new();
  CHECK_INT_EQ(dt_config_load_file(cfg, want, &err), DT_ERR_IO);
  CHECK_INT_EQ(err.code, DT_ERR_IO);
  char msg[600];
  snprintf(msg, sizeof msg, "cannot open config '%s': No such file or directory", want);
  CHECK_STR_CONTAINS(err.msg, msg);
  CHECK_INT_EQ(dt_config_load_file(cfg, dir, &err), DT_ERR_IO);
  snprintf(msg, sizeof msg, "cannot read config '%s': Is a directory", dir);
  CHECK_STR_CONTAINS(err.msg, msg);
  dt_config_free(cfg);

  char *paths[] = {good, second, long_path, many_path, nul_path};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    CHECK_INT_EQ(unlink(paths[i]), 0);
    free(paths[i]);
  }
  CHECK_INT_EQ(rmdir(dir), 0);
  free(long_text);
  free(many_text);
}

/* --print-config shows the defaults too (issue 14, for users): every key looked up
 * but absent appears as a comment with the default its reader used, in its section or
 * under a commented header, and the text reads back as the same config. */
static void test_to_string_all(void) {
  dt_config_t *cfg = load("[train]\nlr = 0.1\n[empty]\n");
  dt_error_t err = {0};
  long epochs;
  double momentum;
  bool shuffle;
  const char *dir;
  int kind;
  static const char *const kinds[] = {"sgd", "adam", NULL};
  double lr;
  CHECK_INT_EQ(dt_config_get_double(cfg, "train", "lr", 0.01, 0, 10, &lr, &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 10, 1, 100, &epochs, &err), 0);
  CHECK_INT_EQ(dt_config_get_int(cfg, "train", "epochs", 99, 1, 100, &epochs, &err), 0);
  CHECK_INT_EQ(dt_config_get_double(cfg, "optimizer", "momentum", 0.9, 0, 1, &momentum, &err), 0);
  CHECK_INT_EQ(dt_config_get_bool(cfg, "train", "shuffle", true, &shuffle, &err), 0);
  CHECK_INT_EQ(dt_config_get_string(cfg, "data", "dir", "/data", &dir, &err), 0);
  CHECK_INT_EQ(dt_config_get_string(cfg, "data", "optional", NULL, &dir, &err), 0);
  CHECK_INT_EQ(dt_config_get_choice(cfg, "optimizer", "type", "sgd", kinds, &kind, &err), 0);
  char text[1024];
  size_t n = dt_config_to_string_all(cfg, text, sizeof text);
  CHECK(n < sizeof text);
  CHECK(strcmp(text,
               "[train]\nlr = 0.1\n# epochs = 10  (default)\n# shuffle = true  (default)\n"
               "\n[empty]\n"
               "\n# [optimizer]\n# momentum = 0.9  (default)\n# type = sgd  (default)\n"
               "\n# [data]\n# dir = /data  (default)\n") == 0);
  /* The plain form is unchanged, and both read back as the same config. */
  char plain[256];
  dt_config_to_string(cfg, plain, sizeof plain);
  CHECK(strcmp(plain, "[train]\nlr = 0.1\n\n[empty]\n") == 0);
  dt_config_t *back = load(text);
  char again[256];
  dt_config_to_string(back, again, sizeof again);
  CHECK(strcmp(again, plain) == 0);
  dt_config_free(back);
  dt_config_free(cfg);
}

/* dt_config_extract: a prefix's sections copied under their short names, with their
 * locations; used in the source, checked in the copy. */
static void test_extract(void) {
  dt_config_t *cfg = load("[gen.layer.1]\nunits = 4\n[gen.optimizer]\nlr = 0.5\n"
                          "[general]\nx = 1\n[gen]\ny = 2\n[layer.1]\nunits = 9\n");
  dt_config_t *sub = dt_config_new();
  dt_error_t err = {0};
  int count = -1;
  CHECK_INT_EQ(dt_config_extract(sub, cfg, "gen", &count, &err), 0);
  CHECK_INT_EQ(count, 2);
  long units = 0;
  double lr = 0;
  CHECK_INT_EQ(dt_config_get_int(sub, "layer.1", "units", 0, 0, 100, &units, &err), 0);
  CHECK_INT_EQ(units, 4);
  CHECK_INT_EQ(dt_config_get_double(sub, "optimizer", "lr", 0, 0, 1, &lr, &err), 0);
  CHECK(lr == 0.5);
  CHECK(!dt_config_has_section(sub, "general") && !dt_config_has_section(sub, ""));
  CHECK(strcmp(dt_config_where(sub, "layer.1", "units"), "x.ini:2") == 0);
  CHECK(strcmp(dt_config_where(sub, "optimizer", NULL), "x.ini [gen.optimizer]") == 0);
  /* A bad value names the original line. */
  CHECK_INT_EQ(dt_config_get_int(sub, "layer.1", "units", 0, 5, 100, &units, &err),
               DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:2:");
  /* The copied keys are used in the source; the others are not. */
  CHECK_INT_EQ(dt_config_check_unused(cfg, &err), DT_ERR_CONFIG);
  CHECK_STR_CONTAINS(err.msg, "x.ini:6: unknown section [general]");
  dt_config_free(sub);
  dt_config_free(cfg);
}

int main(void) {
  test_syntax();
  test_getters();
  test_overrides();
  test_numbered_sections();
  test_check_unused();
  test_to_string();
  test_to_string_all();
  test_foreach();
  test_syntax_errors();
  test_value_errors();
  test_override_errors();
  test_numbered_errors();
  test_files();
  test_extract();
  return test_summary("test_config");
}
