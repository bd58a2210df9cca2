/* Server checkpoints: the range (range.h) and what the core says it needs besides
 * (snapshot.h), saved in the atomic directory format of checkpoint.h and read back
 * for --resume. Nothing else of the server is seen here. */
#ifndef DTRAIN_PS_CKPT_H
#define DTRAIN_PS_CKPT_H

#include <stddef.h>

#include "core/range.h"
#include "core/snapshot.h"
#include "dtrain/error.h"
#include "dtrain/log.h"

/* A checkpoint of r and st under dir, keeping the newest `keep` (0: all). */
int ps_ckpt_save(const char *dir, long keep, const ps_range_t *r, const ps_snapshot_t *st,
                 const dt_log_t *log, dt_error_t *err);
/* The newest checkpoint under dir that verifies, into *r (a fresh range) and *st, and
 * its path into path (cap bytes). 0 restored, DT_ERR_NOT_FOUND nothing to restore,
 * other errors fatal. */
int ps_ckpt_restore(const char *dir, dt_log_t *log, ps_range_t *r, ps_snapshot_t *st,
                    char *path, size_t cap, dt_error_t *err);

#endif
