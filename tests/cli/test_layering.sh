# The layering of src/ (docs/architecture.md): every library includes only headers
# of the libraries below it, no two folders include each other, no include cycles
# between modules; dtrain-ps links no BLAS, no MPI and no layer code; the training
# loop knows no exchange mode (it calls the exchange table only). The checker is also
# run on copies of src/ with one bad include put in, and must catch each.
source "$(dirname "$0")/lib.sh"
check="$SRC/tests/python/check_layers.py"

out=$(python3 "$check" "$SRC/src" 2>&1) && pass || fail "src/ breaks the layering: $out"

# copy_src NAME: a fresh copy of src/ in $TMP/NAME.
copy_src() { rm -rf "${TMP:?}/$1" && cp -r "$SRC/src" "$TMP/$1"; }

# A lower library reaching up (core using a layer) is caught, with file and line.
copy_src up
sed -i '0,/^#include "dtrain\/json.h"/s||#include "dtrain/json.h"\n#include "dtrain/layer.h"|' \
  "$TMP/up/core/json.c"
out=$(python3 "$check" "$TMP/up" 2>&1)
[ $? -eq 1 ] && grep -q 'core/json.c:[0-9]*: src/core includes "dtrain/layer.h" of src/nn' <<<"$out" &&
  pass || fail "an upward include was not caught: $out"

# Two folders using each other (io <-> tb) are caught even when both are allowed below.
copy_src mutual
sed -i '0,/^#include "dtrain\/crc32c.h"/s||#include "dtrain/crc32c.h"\n#include "dtrain/data.h"|' \
  "$TMP/mutual/tb/event_writer.c"
sed -i '0,/^#include "dtrain\/json.h"/s||#include "dtrain/json.h"\n#include "dtrain/events.h"|' \
  "$TMP/mutual/io/checkpoint.c"
out=$(python3 "$check" "$TMP/mutual" 2>&1)
[ $? -eq 1 ] && grep -q "src/io and src/tb include each other" <<<"$out" && pass ||
  fail "two folders including each other were not caught: $out"

# A module cycle inside one folder (json.c uses config.h, config.c uses json.h).
copy_src cycle
sed -i '0,/^#include "dtrain\/config.h"/s||#include "dtrain/config.h"\n#include "dtrain/json.h"|' \
  "$TMP/cycle/core/config.c"
sed -i '0,/^#include "dtrain\/json.h"/s||#include "dtrain/json.h"\n#include "dtrain/config.h"|' \
  "$TMP/cycle/core/json.c"
out=$(python3 "$check" "$TMP/cycle" 2>&1)
[ $? -eq 1 ] && grep -q "include cycle among modules core/config, core/json" <<<"$out" && pass ||
  fail "an include cycle was not caught: $out"

# The training loop (trainer.c) has no exchange-mode branches: it never names a mode's
# implementation or setting; exchange_setup chose the table once.
modes=$(grep -nE "ps_sync|ps_client|dt_grad_sync|sync\.mode|opt\.ps\b|\"ps\"" \
  "$SRC/src/worker/trainer.c")
[ -z "$modes" ] && pass || fail "trainer.c branches on the exchange mode: $modes"
grep -q "exchange_update" "$SRC/src/worker/trainer.c" && pass ||
  fail "trainer.c does not call the exchange table: the check above proves nothing"

# dtrain-ps: no BLAS, no MPI, no layers, by its dynamic dependencies and its symbols.
PS="$BUILD/src/paramserver/dtrain-ps"
libs=$(ldd "$PS" | awk '{print $1}')
bad=$(grep -iE "blas|lapack|mpi|open-rte|open-pal|gfortran" <<<"$libs")
[ -z "$bad" ] && pass || fail "dtrain-ps links $bad"
syms=$(nm "$PS" | awk '{print $NF}' | grep -E "^(cblas_|MPI_|PMPI_|ompi_|dt_layer_|dt_model_)" | head)
[ -z "$syms" ] && pass || fail "dtrain-ps holds symbols it must not: $syms"
# ... while the worker does (so the two checks above can see what they look for).
nm "$BUILD/src/worker/dtrain-worker" | grep -q " dt_model_forward$" &&
  ldd "$BUILD/src/worker/dtrain-worker" | grep -q libmpi && pass ||
  fail "the worker shows no model code or MPI: the checks above prove nothing"
finish
