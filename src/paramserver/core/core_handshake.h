/* The handshake: HELLO's checks (protocol, token, model and split) and membership,
 * INIT, and the check every PUSH and PULL passes first. */
#ifndef DTRAIN_PS_CORE_HANDSHAKE_H
#define DTRAIN_PS_CORE_HANDSHAKE_H

#include <stdbool.h>

#include "core_state.h"

/* Whether s's HELLO describes the model and split this server holds (true before
 * INIT); fails s (BAD_SHARD, BAD_SIGNATURE) if not. */
bool ps_handshake_check(ps_core_t *c, ps_actions_t *out, ps_session_t *s);
/* HELLO on a new session: WELCOME and a member, or a failure. */
void ps_handshake_hello(ps_core_t *c, ps_session_t *s, const ps_hello_t *h, double now,
                        ps_actions_t *out);
/* INIT: the range, unless it exists already (the first INIT wins). */
void ps_handshake_init(ps_core_t *c, ps_session_t *s, const ps_init_t *in,
                       ps_actions_t *out);
/* PUSH and PULL (a dt_ps_type) need the range and a model that matches it. */
bool ps_handshake_ready(ps_core_t *c, ps_actions_t *out, ps_session_t *s, int type);

#endif
