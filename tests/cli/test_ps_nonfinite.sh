# NaN and infinite gradients never reach the parameters (issue 14, defect 5):
#  - the server refuses a PUSH with a NaN in it (ERROR BAD_MESSAGE, closed), counts it
#    in its stats line and applies nothing of it;
#  - a diverging worker (train.lr = 1e6, no momentum) stops at the step whose loss or
#    gradient is not finite, before it pushes that step: the server has applied exactly
#    the pushes of the steps before and refused none.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
BAD="$BUILD/tests/ps_bad_client"
D="$TMP/data"
make_subset "$D" 1200
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

# --- a NaN push from a client of its own ---
ps_start s0 || finish
out=$("$BAD" 127.0.0.1 "$PORT_s0" nan_push 2>&1) && pass || fail "nan_push: $out"
echo "$out"
ps_stop s0
grep -qE "^warning: connection .* \(worker 991\): BAD_MESSAGE: a gradient with 1 non-finite value\(s\) \(the first at 1 of the range: nan\); not applied; closing it$" \
  "$TMP/s0.log" && pass || fail "no refusal in the server log: $(cat "$TMP/s0.log")"
grep -q "1 non-finite push(es) refused" <(grep 'stats (final)' "$TMP/s0.log") && pass ||
  fail "the refused push is not counted: $(grep 'stats (' "$TMP/s0.log")"
[ "$(stat_of s0 version)" = 0 ] && pass || fail "the server applied something: version $(stat_of s0 version)"

# --- a worker that diverges ---
ps_start s1 || finish
out=$("$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s1" \
  --set train.lr=1e6 --set optimizer.momentum=0 2>&1)
rc=$?
[ "$rc" -eq 1 ] && pass || fail "the diverging worker exited with $rc: $(tail -2 <<<"$out")"
ps_stop s1
echo "$out" | tail -1
grep -vE "^stats" "$TMP/s1.log"
# What the worker pushed before it stopped: the steps before the one with the bad loss,
# or the pushes it names with the bad gradient.
step=$(sed -nE 's/.*the training loss became (NaN|infinite) at step ([0-9]+) .*/\2/p' <<<"$out")
pushed=$(sed -nE 's/.*the gradient after ([0-9]+) push\(es\) has [0-9]+ non-finite value.*not pushed.*/\1/p' <<<"$out")
[ -n "$step" ] && pushed=$((step - 1))
if [ -z "$pushed" ]; then
  fail "the worker did not stop at a non-finite loss or gradient: $out"
else
  v=$(stat_of s1 version)
  [ "$v" = "$pushed" ] && pass ||
    fail "the server applied $v updates, expected $pushed (only the finite steps)"
fi
grep -q " 0 non-finite push(es) refused" <(grep 'stats (final)' "$TMP/s1.log") && pass ||
  fail "the worker pushed a non-finite gradient: $(grep 'stats (final)' "$TMP/s1.log")"
finish
