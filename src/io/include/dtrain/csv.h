/* CSV files of numbers with a header row of column names: inputs (features) and targets
 * chosen by column name.
 *
 * The file: a header row of names (quoted as Python's csv module quotes them, "" for a
 * quote inside), then rows of numbers only, one row per line; LF or CRLF line ends, a
 * final newline optional, a UTF-8 byte order mark skipped; empty lines at the very end are
 * allowed (nothing follows them), anywhere else they are an error. Numbers are what C's
 * strtod reads in the "C" locale (decimal point '.'), except hexadecimal; each is read as
 * a double and then rounded to float32, so that a value equals NumPy's
 * float32(float(text)). Spaces or tabs around a number and quotes around a cell
 * ("1.5", as csv.QUOTE_ALL writes) are allowed. Columns that are neither features nor
 * targets are skipped unread (they may hold text), but every row must still have the
 * header's number of fields, and a quoted cell in any row may not hold a line break.
 *
 * Errors name file:line:column, the column as its 1-based field number and its name:
 * a row with too few or too many fields, an empty cell, a non-number (its text shown),
 * NaN or an infinity (also a number beyond float32's range), an unknown name in targets
 * or features (the header's names listed), a column name that appears twice, a column
 * that is both target and feature, a file without a header or without data rows. */
#ifndef DTRAIN_CSV_H
#define DTRAIN_CSV_H

#include "dtrain/data.h"
#include "dtrain/error.h"

typedef struct {
  const char *targets;  /* comma-separated column names of the targets; NULL or "": none */
  const char *features; /* comma-separated column names of the inputs; NULL or "": every
                           column that is not a target */
} dt_csv_opts_t;

/* Loads path into out: x is DT_F32 (n, features) in the order the features are listed
 * (or file order), shape (features); y is DT_F32 (n, targets) as DT_Y_VALUES in the
 * order the targets are listed (DT_Y_NONE without targets: dt_dataset_targets_as_classes
 * makes classes of a single integer column); first_line is the line of data row 0 (2
 * unless a quoted name in the header spans lines); what is a copy of path that the
 * dataset owns; meta_json is `"features": [names], "targets": [names]`. Names in the
 * lists are trimmed of surrounding spaces (so that "a, b" works); names holding a comma
 * cannot be listed. On error out is left empty. */
int dt_csv_load(const char *path, const dt_csv_opts_t *o, dt_dataset_t *out, dt_error_t *err);

#endif
