/* Progress inside an epoch (see progress.h). */
#define _DEFAULT_SOURCE /* TIOCGWINSZ */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dtrain/clock.h"

/* The bar's width when the terminal is wide, and the least it shrinks to. */
enum { BAR_MAX = 30, BAR_MIN = 5, DEFAULT_COLUMNS = 80 };

progress_mode progress_auto(FILE *out, bool launched) {
  return !launched && isatty(fileno(out)) ? PROGRESS_BAR : PROGRESS_LINES;
}

void progress_init(progress_t *p, FILE *out, progress_mode mode, double every_s) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->mode = mode;
  p->every_s = every_s;
  p->reconstruction = p->kl = NAN;
}

void progress_begin(progress_t *p, long epoch, long epochs, long first, long total_steps) {
  p->epoch = epoch;
  p->epochs = epochs;
  p->first = first;
  p->total = total_steps;
  p->start = p->last_draw = dt_now_s();
}

/* Columns of the terminal behind out; 80 when it does not say. */
static int columns(FILE *out) {
  struct winsize ws;
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return DEFAULT_COLUMNS;
}

/* " - loss: 0.1234 - accuracy: 0.5678" (and a VAE's terms) into buf. */
static void metrics(const progress_t *p, char *buf, size_t cap, double loss, double accuracy) {
  int n = snprintf(buf, cap, " - loss: %.4f", loss);
  if (!isnan(p->reconstruction) && n > 0 && (size_t)n < cap)
    n += snprintf(buf + n, cap - (size_t)n, " - reconstruction_loss: %.4f - kl_loss: %.4f",
                  p->reconstruction, p->kl);
  if (!isnan(accuracy) && n > 0 && (size_t)n < cap)
    snprintf(buf + n, cap - (size_t)n, " - accuracy: %.4f", accuracy);
}

void progress_set_terms(progress_t *p, double reconstruction, double kl) {
  p->reconstruction = reconstruction;
  p->kl = kl;
}

static void draw_bar(progress_t *p, long done, double eta, const char *tail) {
  char head[64];
  int head_len = snprintf(head, sizeof head, "%6ld/%-6ld [", done, p->total);
  char rest[192];
  int rest_len = snprintf(rest, sizeof rest, "] - ETA: %4.0fs%s", eta, tail);
  /* The line must stay one column short of the width, or the terminal wraps it and
   * every redraw leaves a line behind. */
  int width = columns(p->out) - 1 - head_len - rest_len;
  if (width > BAR_MAX) width = BAR_MAX;
  char bar[BAR_MAX + 1];
  if (width < BAR_MIN) {
    /* Too narrow for a bar: the counts and the ETA only. */
    fprintf(p->out, "\r%6ld/%ld - ETA: %.0fs\033[K", done, p->total, eta);
  } else {
    int filled = p->total > 0 ? (int)(width * done / p->total) : width;
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
    bar[width] = '\0';
    fprintf(p->out, "\r%s%s%s\033[K", head, bar, rest);
  }
  fflush(p->out);
}

void progress_update(progress_t *p, long done, double loss, double accuracy) {
  if (p->mode == PROGRESS_OFF) return;
  double now = dt_now_s();
  double elapsed = now - p->start;
  long ran = done - p->first;
  double eta = ran > 0 ? elapsed * (double)(p->total - done) / (double)ran : 0.0;
  char tail[160];
  metrics(p, tail, sizeof tail, loss, accuracy);
  if (p->mode == PROGRESS_BAR) {
    if (done < p->total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    draw_bar(p, done, eta, tail);
    return;
  }
  /* Plain lines: not for the epoch's last step, which the epoch line reports. */
  if (done >= p->total || now - p->last_draw < p->every_s) return;
  p->last_draw = now;
  fprintf(p->out, "  epoch %ld/%ld: %ld/%ld steps (%.0f%%) - %.0fs - ETA %.0fs%s\n", p->epoch,
          p->epochs, done, p->total, 100.0 * (double)done / (double)p->total, elapsed, eta, tail);
  fflush(p->out);
}

void progress_end(progress_t *p) {
  if (p->mode != PROGRESS_BAR) return;
  fprintf(p->out, "\r\033[K");
  fflush(p->out);
}
