/* Progress inside an epoch. On a terminal: a live one-line bar with ETA that fits the
 * terminal's width. Elsewhere (a log file, a pipe, any rank under mpirun): a plain
 * line every few seconds, so a long epoch still shows that it moves. The per-epoch
 * lines follow either way. */
#ifndef DTRAIN_WORKER_PROGRESS_H
#define DTRAIN_WORKER_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef enum {
  PROGRESS_OFF,   /* nothing inside an epoch */
  PROGRESS_BAR,   /* the live bar: out is a terminal of its own */
  PROGRESS_LINES  /* plain lines every `every_s` seconds */
} progress_mode;

/* Plain lines come this often by default. */
#define PROGRESS_DEFAULT_EVERY_S 10.0

typedef struct {
  progress_mode mode;
  FILE *out;
  double every_s; /* PROGRESS_LINES: seconds between lines (0: every step) */
  long epoch, epochs, first, total;
  double start, last_draw;
  /* A loss with terms reported apart (a VAE: reconstruction and KL), NaN when not. */
  double reconstruction, kl;
} progress_t;

/* The mode for `out`: the bar on a terminal unless `launched` (under mpirun the output
 * is a pseudo-terminal even when it ends in a file, and ranks would draw over each
 * other), plain lines otherwise. */
progress_mode progress_auto(FILE *out, bool launched);

void progress_init(progress_t *p, FILE *out, progress_mode mode, double every_s);
/* Epoch `epoch` of `epochs` (1-based) begins, with total_steps steps of which `first`
 * were done before (a resume in mid-epoch: the ETA counts only this run's pace). */
void progress_begin(progress_t *p, long epoch, long epochs, long first, long total_steps);
/* `done` steps of the epoch are done; loss and accuracy (NaN: none) so far. The bar
 * redraws at most ten times a second. */
void progress_update(progress_t *p, long done, double loss, double accuracy);
/* The running means of a VAE's two loss terms, shown after the loss from the next
 * update on (NaN: not shown). */
void progress_set_terms(progress_t *p, double reconstruction, double kl);
/* Clears the bar so the epoch line can take its place. */
void progress_end(progress_t *p);

#endif
