/* The state of a run (see run_state.h). */
#include "run_state.h"

#include <stdlib.h>
#include <string.h>

void run_state_init(run_state_t *rs) {
  memset(rs, 0, sizeof *rs);
  rs->last_ckpt_step = -1;
}

void run_state_next_epoch(run_state_t *rs) {
  rs->epoch++;
  rs->batch_in_epoch = 0;
  rs->epoch_loss_sum = rs->epoch_correct = rs->epoch_total = 0.0;
  rs->epoch_batches = 0;
}

bool run_state_stopped_early(const run_state_t *rs) {
  return rs->early_stopping.opt.enabled && rs->early_stopping.st.stopped_epoch >= 0;
}

void run_state_free(run_state_t *rs) {
  free(rs->best_weights);
  rs->best_weights = NULL;
}
