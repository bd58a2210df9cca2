/* Text datasets (Keras' TextVectorization): a TSV of one sample per line, a label, a tab
 * and the text; the text becomes a fixed-length sequence of token ids from a vocabulary
 * of the most frequent training tokens, the label a class id.
 *
 * The file: UTF-8 (a leading byte order mark is skipped), LF or CRLF line ends, a final
 * newline optional, empty lines allowed only at the very end. A line is the label (any
 * non-empty UTF-8 string without a tab, e.g. "de"), a tab, and the text (the rest of the
 * line, further tabs included; not empty). NUL bytes are refused.
 *
 * Tokens:
 *  - words: the text lowercased, punctuation removed (ASCII punctuation as Keras removes
 *    it, so "don't" is "dont", and the common Unicode punctuation: ¡ ¿ « » · § ¶, the
 *    General Punctuation block's dashes, quotes and ellipsis, CJK and full-width marks),
 *    then split on white space (ASCII's and Unicode's space separators);
 *  - chars: every code point lowercased is one token, spaces and punctuation included.
 *  Lowercasing covers ASCII, Latin-1 Supplement, Latin Extended-A (the letters of
 *  English, German, Spanish, Italian, Czech, Polish, Breton...), basic Greek and basic
 *  Cyrillic; other letters are kept as they are (Keras lowercases all of Unicode). İ
 *  becomes a plain i.
 *
 * Vocabulary: id 0 is padding (""), id 1 is out of vocabulary ("[UNK]"), then the
 * max_tokens - 2 most frequent tokens of the training lines from id 2, by count
 * descending, ties broken by the token's UTF-8 bytes ascending (a shorter token before
 * the longer one it begins). Keras orders ties its own way, so a vocabulary with ties at
 * its cut may differ from Keras' in which tokens it keeps. Classes: the distinct labels
 * of the training lines, sorted by their bytes; a class id indexes them.
 *
 * Errors name file:line (and the byte column, 1-based, for invalid UTF-8): an empty
 * text, a missing tab, an empty label, invalid UTF-8, a NUL byte, a file without lines,
 * max_tokens < 3, sequence_length < 1, a label the training lines do not have. */
#ifndef DTRAIN_TEXT_H
#define DTRAIN_TEXT_H

#include "dtrain/data.h"
#include "dtrain/error.h"

typedef enum { DT_TOKENS_WORDS, DT_TOKENS_CHARS } dt_token_kind;

typedef struct {
  dt_token_kind tokens;
  long max_tokens;      /* vocabulary size including id 0 (padding) and id 1 (out of
                           vocabulary, "[UNK]"), as Keras counts it */
  long sequence_length; /* ids per sample: padded with 0 at the end or truncated */
  /* NULL: build the vocabulary and class names from this file; else reuse those of this
   * (training) dataset, read from its meta_json and class_names: tokens, max_tokens and
   * sequence_length are then the training set's and the ones above are ignored. Nothing
   * of it is kept: the new dataset may outlive it. */
  const dt_dataset_t *vocab_from;
  /* Building: the tail fraction of lines (the validation split, rounded as
   * dt_dataset_split rounds) that the vocabulary and class names do not come from; a
   * label found only there is an error. */
  double holdout_fraction;
} dt_text_opts_t;

/* Loads path into out: x is DT_I32 (n, sequence_length) token ids, shape
 * (sequence_length), integer_ids true; y is DT_I32 class ids (DT_Y_CLASSES) with
 * num_classes and class_names; first_line 1; what a copy of path; meta_json
 * `"tokens": "words"|"chars", "max_tokens": N, "sequence_length": N, "vocabulary":
 * ["", "[UNK]", ...every token by id]`. The dataset owns all of it. On error out is left
 * empty. */
int dt_text_load(const char *path, const dt_text_opts_t *o, dt_dataset_t *out, dt_error_t *err);

#endif
