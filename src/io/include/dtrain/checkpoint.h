/* Checkpoint directories: written atomically, verified on load.
 *
 * A checkpoint root holds one directory per checkpoint plus two pointer files:
 *
 *   ROOT/ckpt-000001200/        one checkpoint (the name is the caller's)
 *       manifest.json           every other file's name, size and CRC32C
 *       model.safetensors ...   whatever the caller adds
 *   ROOT/latest                 the name of the newest committed checkpoint
 *   ROOT/best                   (optional) the name of one checkpoint pruning keeps
 *
 * Writing: files go into ROOT/.tmp-NAME, each fsync'd; commit writes the manifest,
 * fsyncs the directory, renames it to ROOT/NAME, fsyncs ROOT, then replaces `latest`
 * by writing latest.tmp, fsyncing it and renaming it over `latest`. A crash at any
 * point leaves `latest` naming either the old or the new checkpoint, both complete.
 * Any failure (disk full, permission) is returned and the temporary directory is
 * removed; `latest` is untouched.
 *
 * Names are a lowercase word, '-' and digits (ckpt-0000001200, ps-000000000000042).
 * ROOT may hold the user's own folders too: only directories with such a name are
 * listed or resumed from, and pruning removes only those whose manifest is ours, and
 * in them only the files the manifest lists.
 *
 * Reading: dt_ckpt_find_latest verifies the checkpoint `latest` names (the manifest,
 * then every file's size and CRC32C); if it is missing or corrupt it says why and
 * falls back to the newest older checkpoint that verifies. A loader that reads the
 * large files only once checks them while it reads them instead (dt_ckpt_find with
 * deferred files, dt_ckpt_in_*) and asks for the next checkpoint if one fails. */
#ifndef DTRAIN_CHECKPOINT_H
#define DTRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtrain/error.h"
#include "dtrain/tensor.h"
#include "dtrain/log.h"

enum { DT_CKPT_PATH_MAX = 4096, DT_CKPT_MAX_FILES = 64 };

typedef struct dt_ckpt_writer dt_ckpt_writer_t;

/* Starts checkpoint NAME (a lowercase word, '-', digits) under ROOT (created if
 * missing): makes ROOT/.tmp-NAME, replacing a stale one left by a crash. */
int dt_ckpt_begin(const char *root, const char *name, dt_ckpt_writer_t **out, dt_error_t *err);

/* Starts one standalone directory DIR written the same way (a saved model): its files
 * go into .tmp-BASE beside it, and commit writes the manifest (so dt_ckpt_verify and
 * dt_ckpt_find check it as a checkpoint) and renames it to DIR, replacing a DIR that is
 * there; no `latest` is written and nothing is pruned (keep_last is ignored). DIR's
 * parent is created if missing. */
int dt_ckpt_begin_dir(const char *dir, dt_ckpt_writer_t **out, dt_error_t *err);

/* The temporary directory, for other processes (ranks) that write their own files
 * into it with dt_ckpt_write_file and report them with dt_ckpt_add_record. */
const char *dt_ckpt_tmp_dir(const dt_ckpt_writer_t *w);

/* Writes DIR/FILE (create, write all, fsync, close) and returns its CRC32C. */
int dt_ckpt_write_file(const char *dir, const char *file, const void *data, size_t len,
                       uint32_t *crc, dt_error_t *err);

/* One piece of a file written from several buffers. */
typedef struct {
  const void *data;
  size_t len;
} dt_ckpt_piece_t;

/* Writes DIR/FILE from n pieces in order, straight from their memory (no copy into
 * one buffer), then fsyncs it; *size and *crc (either may be NULL) get the file's
 * size and CRC32C, computed on the way over each piece just before it is written. */
int dt_ckpt_write_pieces(const char *dir, const char *file, const dt_ckpt_piece_t *pieces, int n,
                         uint64_t *size, uint32_t *crc, dt_error_t *err);

/* Writes FILE into the checkpoint from n pieces (as dt_ckpt_write_pieces) and records
 * it in the manifest; *size (may be NULL) gets its length. The file is fsync'd by
 * dt_ckpt_commit, together with the others, before the manifest is written. */
int dt_ckpt_add_pieces(dt_ckpt_writer_t *w, const char *file, const dt_ckpt_piece_t *pieces,
                       int n, uint64_t *size, dt_error_t *err);

/* Writes FILE into the checkpoint and records it in the manifest (fsync'd at commit). */
int dt_ckpt_add_file(dt_ckpt_writer_t *w, const char *file, const void *data, size_t len,
                     dt_error_t *err);

/* Writes a safetensors file into the checkpoint straight from the tensors' buffers
 * (see dt_safetensors_write) and records it; *size (may be NULL) gets its size. */
int dt_ckpt_add_safetensors(dt_ckpt_writer_t *w, const char *file, const dt_param_info_t *tensors,
                            int n, const float *const *bases, const char *const *meta,
                            uint64_t *size, dt_error_t *err);

/* Records a file some other process wrote into dt_ckpt_tmp_dir(w). */
int dt_ckpt_add_record(dt_ckpt_writer_t *w, const char *file, uint64_t size, uint32_t crc,
                       dt_error_t *err);

/* Writes the manifest (with `info`, a JSON object's text or NULL, stored under "info"),
 * publishes the checkpoint and points `latest` at it; then removes the oldest of our
 * checkpoints beyond keep_last (0: keep all), never the one `best` names. Frees w,
 * also on failure (the temporary directory is then removed). */
int dt_ckpt_commit(dt_ckpt_writer_t *w, const char *info, int keep_last, dt_error_t *err);

/* Gives up: removes the temporary directory and frees w. */
void dt_ckpt_abort(dt_ckpt_writer_t *w);

/* With on, dt_ckpt_commit removes the checkpoints that keep_last no longer keeps in a
 * background thread instead of before it returns (the training thread does not wait
 * for the file system to free them). Every dt_ckpt_* call that reads or changes a
 * checkpoint root (begin, commit, set_best, find) first waits for that thread, and so
 * does the process's exit: what the API sees is the same as with pruning in line.
 * Off by default; process-wide. */
void dt_ckpt_prune_in_background(bool on);

/* Waits until the background pruning (if any) is finished. */
void dt_ckpt_wait_background(void);

/* Points ROOT/best at NAME (atomically, like `latest`). */
int dt_ckpt_set_best(const char *root, const char *name, dt_error_t *err);

/* Checks DIR's manifest and every file it lists (size and CRC32C). */
int dt_ckpt_verify(const char *dir, dt_error_t *err);

/* The newest checkpoint under ROOT that verifies, as a directory path into dir (of
 * size DT_CKPT_PATH_MAX). Each skipped checkpoint is reported through log with the
 * reason. DT_ERR_NOT_FOUND when ROOT holds no checkpoint at all (folders that are
 * not ours, such as lost+found or one with our kind of name but no manifest, do not
 * count); DT_ERR_FORMAT when it holds some but none verifies. ROOT may also name a checkpoint directory itself. */
int dt_ckpt_find_latest(const char *root, dt_log_t *log, char *dir, dt_error_t *err);

/* How dt_ckpt_find picks, for a loader that reads the large files once, straight into
 * place, checking them as it goes (dt_ckpt_in_*), instead of verifying them first and
 * reading them again:
 *   deferred  files (NULL-terminated names) whose size alone is checked while picking;
 *             the loader checks their CRC32C as it reads them
 *   rejected  checkpoints (NULL-terminated names) such a loader found corrupt: not
 *             tried again; the last of them is reported through log with `why`, as a
 *             checkpoint skipped while picking is, and the next good one is picked.
 * Either list may be NULL. */
typedef struct {
  const char *const *deferred;
  const char *const *rejected;
  const char *why;
} dt_ckpt_find_opts_t;

/* dt_ckpt_find_latest with opts (NULL: verify every file, as dt_ckpt_find_latest). */
int dt_ckpt_find(const char *root, const dt_ckpt_find_opts_t *opts, dt_log_t *log, char *dir,
                 dt_error_t *err);

/* A checkpoint file read once, front to back, and checked against the size and CRC32C
 * its directory's manifest lists, as the bytes arrive. The caller reads it into place
 * (dt_ckpt_in_read, or dt_safetensors_read_head/_data) and ends with dt_ckpt_in_close,
 * which reads what is left and compares the CRC32C: only then are the bytes known to
 * be the ones written, so a caller must be able to undo what it read (a resume loads
 * the previous checkpoint over it, see dt_ckpt_find_opts_t). */
typedef struct dt_ckpt_in dt_ckpt_in_t;

/* Opens DIR/FILE, which DIR's manifest must list with the file's actual size; a size
 * that differs is reported as dt_ckpt_verify reports it, with *corrupt set. */
int dt_ckpt_in_open(const char *dir, const char *file, dt_ckpt_in_t **out, bool *corrupt,
                    dt_error_t *err);
uint64_t dt_ckpt_in_size(const dt_ckpt_in_t *in);     /* the file's size */
uint64_t dt_ckpt_in_offset(const dt_ckpt_in_t *in);   /* the bytes read so far */
const char *dt_ckpt_in_path(const dt_ckpt_in_t *in);  /* DIR/FILE, for messages */

/* Reads the next n bytes into dst (dst NULL: reads and checks them, keeps nothing);
 * DT_ERR_FORMAT if fewer than n are left. */
int dt_ckpt_in_read(dt_ckpt_in_t *in, void *dst, size_t n, dt_error_t *err);

/* Ends the read and frees in (NULL: nothing to do). rc is the caller's outcome so
 * far (0, or an error already in err). Unless that is an I/O or memory error, the
 * rest of the file is read and its CRC32C compared with the manifest's: a mismatch
 * is the error returned (it explains any other: a flipped byte in a header makes it
 * malformed), with *corrupt set and the message dt_ckpt_verify gives. Otherwise rc. */
int dt_ckpt_in_close(dt_ckpt_in_t *in, int rc, bool *corrupt, dt_error_t *err);

/* Reads DIR/FILE whole into a malloc'd buffer. */
int dt_ckpt_read_file(const char *dir, const char *file, void **data, size_t *len,
                      dt_error_t *err);

/* The "info" object of DIR's manifest, as JSON text into buf. */
int dt_ckpt_read_info(const char *dir, char *buf, size_t cap, dt_error_t *err);

/* ---- safetensors ---- */

/* Encodes tensors (names, F32, shapes, offsets into buf) as a safetensors file:
 * 8-byte little-endian header length, JSON header padded with spaces to a multiple of
 * 8, then the data. meta is a NULL-terminated list of key, value string pairs for
 * "__metadata__" (values are JSON-escaped here). *out is malloc'd. */
int dt_safetensors_encode(const dt_param_info_t *tensors, int n, const float *buf,
                          const char *const *meta, void **out, size_t *len, dt_error_t *err);

/* Decodes a safetensors file into buf: every tensor of `tensors` must be present with
 * dtype F32 and the same shape; `what` names the file in errors. Extra tensors in the
 * file are an error too (a different model). */
int dt_safetensors_decode(const void *data, size_t len, const dt_param_info_t *tensors, int n,
                          float *buf, const char *what, dt_error_t *err);

/* The same with tensor i's offset taken into bases[i] (tensors from several buffers:
 * parameters and state, or one moment buffer per optimizer moment). */
int dt_safetensors_encode_parts(const dt_param_info_t *tensors, int n, const float *const *bases,
                                const char *const *meta, void **out, size_t *len,
                                dt_error_t *err);
int dt_safetensors_decode_parts(const void *data, size_t len, const dt_param_info_t *tensors,
                                int n, float *const *bases, const char *what, dt_error_t *err);

/* The head of a safetensors file of these tensors: the 8-byte length and the JSON
 * header padded with spaces (*out malloc'd, *len bytes). The file is the head, then
 * each tensor's floats in the order given. */
int dt_safetensors_head(const dt_param_info_t *tensors, int n, const char *const *meta, void **out,
                        size_t *len, dt_error_t *err);

/* Writes DIR/FILE as dt_safetensors_encode_parts would encode it, byte for byte, but
 * straight from the tensors' buffers: the head, then the floats (tensors adjacent in
 * memory in one piece), with dt_ckpt_write_pieces; *size and *crc as there. */
int dt_safetensors_write(const char *dir, const char *file, const dt_param_info_t *tensors, int n,
                         const float *const *bases, const char *const *meta, uint64_t *size,
                         uint32_t *crc, dt_error_t *err);

/* Reading a checkpoint's safetensors file in one pass, straight into place: first
 * the head (*head malloc'd, head_len bytes, which dt_safetensors_metadata reads), */
int dt_safetensors_read_head(dt_ckpt_in_t *in, const char *what, void **head, size_t *head_len,
                             dt_error_t *err);
/* then the data into the tensors' buffers. Every check of dt_safetensors_decode_parts
 * is made on the head before any byte of a buffer is written; data between or after
 * the tensors are read and checked but not kept. (A file whose tensors overlap is read
 * into a scratch buffer and copied out.) End with dt_ckpt_in_close. */
int dt_safetensors_read_data(dt_ckpt_in_t *in, const void *head, size_t head_len,
                             const dt_param_info_t *tensors, int n, float *const *bases,
                             const char *what, dt_error_t *err);

/* A __metadata__ value of a safetensors file, copied into val. DT_ERR_NOT_FOUND if
 * absent. */
int dt_safetensors_metadata(const void *data, size_t len, const char *key, char *val, size_t cap,
                            dt_error_t *err);

#endif
