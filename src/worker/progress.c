/* Terminal progress bar (see progress.h). */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <math.h>
#include <unistd.h>

#include "dtrain/clock.h"

enum { BAR_WIDTH = 30 };

void progress_init(progress_t *p, FILE *out, bool allowed) {
  p->out = out;
  p->enabled = allowed && isatty(fileno(out));
  p->total = 0;
}

void progress_begin(progress_t *p, long total_steps) {
  p->total = total_steps;
  p->start = dt_now_s();
  p->last_draw = 0.0;
}

void progress_update(progress_t *p, long done, double loss, double accuracy) {
  if (!p->enabled) return;
  double now = dt_now_s();
  if (done < p->total && now - p->last_draw < 0.1) return;
  p->last_draw = now;
  int filled = p->total > 0 ? (int)(BAR_WIDTH * done / p->total) : BAR_WIDTH;
  char bar[BAR_WIDTH + 1];
  for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
  bar[BAR_WIDTH] = '\0';
  double elapsed = now - p->start;
  double eta = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0.0;
  fprintf(p->out, "\r%6ld/%-6ld [%s] - ETA: %4.0fs - loss: %.4f", done, p->total, bar, eta, loss);
  if (!isnan(accuracy)) fprintf(p->out, " - accuracy: %.4f", accuracy);
  fprintf(p->out, "\033[K");
  fflush(p->out);
}

void progress_end(progress_t *p) {
  if (!p->enabled) return;
  fprintf(p->out, "\r\033[K");
  fflush(p->out);
}
