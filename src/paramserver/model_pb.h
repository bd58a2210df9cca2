/* The model description of a range (ps_model_t) and the INIT message that carries it,
 * both ways: INIT frames and a checkpoint's model.pb are read with the first, model.pb
 * is written with the second. */
#ifndef DTRAIN_PS_MODEL_PB_H
#define DTRAIN_PS_MODEL_PB_H

#include <stddef.h>
#include <stdint.h>

#include "core/range.h"
#include "dtrain/error.h"
#include "ps.pb-c.h"

/* in's model into *out; its tensors go into a malloc'd array, *tensors (free it). in
 * has passed dt_ps_check_init. */
int ps_model_from_init(const Dtrain__Ps__Init *in, ps_model_t *out, dt_param_info_t **tensors,
                       dt_error_t *err);
/* The INIT message for m without parameters, packed into a malloc'd *out (*len bytes). */
int ps_model_pack(const ps_model_t *m, uint8_t **out, size_t *len, dt_error_t *err);

#endif
