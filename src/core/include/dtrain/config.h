/* INI-style run configuration with source locations.
 *
 * A config is a list of [section] key = value entries, each remembering where it
 * came from (file and line, or the --set argument that set it). Typed getters
 * validate values and name the location on error. Every lookup marks the key as
 * used, so that after the run has been built dt_config_check_unused() can reject
 * keys nobody asked for (typos, keys of the wrong layer type).
 *
 * Syntax: '#' or ';' start a comment (at line start, or after whitespace);
 * sections are [name] (names may contain dots, e.g. [layer.2]); entries are
 * key = value; surrounding whitespace is trimmed. A key repeated in one section
 * is an error; a repeated section header continues that section. */
#ifndef DTRAIN_CONFIG_H
#define DTRAIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/error.h"

typedef struct dt_config dt_config_t;

dt_config_t *dt_config_new(void);
void dt_config_free(dt_config_t *cfg);

/* Parses a file (path is used in messages). */
int dt_config_load_file(dt_config_t *cfg, const char *path, dt_error_t *err);
/* Parses text; origin names it in messages (e.g. a file name). */
int dt_config_load_string(dt_config_t *cfg, const char *text, const char *origin, dt_error_t *err);

/* Applies "section.key=value" (the section is everything before the last dot of the
 * left side, so "layer.2.units=64" sets key units of [layer.2]). Adds the key if absent,
 * replaces it otherwise; its location becomes "--set section.key". */
int dt_config_override(dt_config_t *cfg, const char *assignment, dt_error_t *err);

bool dt_config_has_section(const dt_config_t *cfg, const char *section);
bool dt_config_has_key(const dt_config_t *cfg, const char *section, const char *key);

/* Section names that start with prefix followed by a positive integer (e.g. "layer."
 * gives layer.1, layer.2, ...), sorted by that integer. Fills names (pointers owned by
 * cfg) up to max; *count is the total found. Errors on a non-integer or duplicate suffix. */
int dt_config_numbered_sections(const dt_config_t *cfg, const char *prefix, const char **names,
                                int max, int *count, dt_error_t *err);

/* Copies every section of src named PREFIX.REST (e.g. "generator.layer.2" for prefix
 * "generator") into dst as [REST] ("layer.2"), each entry with its value and its
 * location in src, so that messages about dst still name the user's file and line.
 * The copied entries count as used in src: whoever reads dst checks them there (with
 * dt_config_check_unused on dst). *count gets the number of sections copied. */
int dt_config_extract(dt_config_t *dst, dt_config_t *src, const char *prefix, int *count,
                      dt_error_t *err);

/* Typed getters. A missing key gives the default (def) without error; a present key
 * with a bad value is an error naming location, section, key and value. */
int dt_config_get_string(dt_config_t *cfg, const char *section, const char *key, const char *def,
                         const char **out, dt_error_t *err);
int dt_config_get_int(dt_config_t *cfg, const char *section, const char *key, long def, long min,
                      long max, long *out, dt_error_t *err);
int dt_config_get_double(dt_config_t *cfg, const char *section, const char *key, double def,
                         double min, double max, double *out, dt_error_t *err);
int dt_config_get_bool(dt_config_t *cfg, const char *section, const char *key, bool def, bool *out,
                       dt_error_t *err); /* true/false/yes/no/on/off/1/0 */
/* One of choices (a NULL-terminated list); *out is its index. The error lists the choices. */
int dt_config_get_choice(dt_config_t *cfg, const char *section, const char *key, const char *def,
                         const char *const *choices, int *out, dt_error_t *err);
/* A comma-separated list of positive integers, e.g. "28,28,1"; *count is its length. */
int dt_config_get_int_list(dt_config_t *cfg, const char *section, const char *key, int *out,
                           int max, int *count, dt_error_t *err);

/* "file.ini:12" or "--set train.lr" for a present key, or "file.ini [section]" if only the
 * section exists; for messages that callers build themselves (e.g. shape errors). */
const char *dt_config_where(const dt_config_t *cfg, const char *section, const char *key);

/* Fails with the location of the first key (in file order) never looked up:
 * "file.ini:7: unknown key 'unit' in [layer.2]". */
int dt_config_check_unused(const dt_config_t *cfg, dt_error_t *err);

/* Calls fn(ctx, section, key, value) for every entry, section by section in order of
 * first appearance (the order dt_config_to_string writes). Stops at the first non-zero
 * result of fn and returns it; 0 after the last entry. Marks nothing as used. */
int dt_config_foreach(const dt_config_t *cfg,
                      int (*fn)(void *ctx, const char *section, const char *key,
                                const char *value),
                      void *ctx);

/* Writes the effective config (after overrides) as INI text into buf; returns the length
 * it needs (like snprintf), so a NULL/0 call sizes it. */
size_t dt_config_to_string(const dt_config_t *cfg, char *buf, size_t cap);

/* The same, plus every key that was looked up but absent, with the default its reader
 * used, as a comment line "# key = value  (default)" in its section (a section that
 * only defaults came from gets a commented header "# [name]"). Reading the text back
 * gives the same config. Meant for after everything has read its settings. */
size_t dt_config_to_string_all(const dt_config_t *cfg, char *buf, size_t cap);

#endif
