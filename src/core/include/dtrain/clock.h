/* The one clock dtrain measures intervals with: monotonic, in seconds. Deadlines,
 * time-outs and step timings use it; wall-clock time (file names, event stamps) does
 * not. */
#ifndef DTRAIN_CLOCK_H
#define DTRAIN_CLOCK_H

/* Seconds since an arbitrary fixed point; never goes back. */
double dt_now_s(void);

#endif
