# Sync mode puts a worker that joins mid-run into the same round on every server.
# tests/tools/ps_sync_rounds.c plays two workers against two sync servers in the order
# that broke this before: the newcomer's HELLO reaches server 0 after it applied round
# 1 and server 1 before. Both servers must then apply round 1 from the first worker
# alone and round 2 from both, so every parameter of the model shows the same sums;
# the servers log the round the newcomer takes part from.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"

ps_start s0 --set ps.consistency=sync || finish
ps_start s1 --set ps.consistency=sync || finish
out=$(timeout 120 "$BUILD/tests/ps_sync_rounds" 127.0.0.1 "$PORT_s0" "$PORT_s1" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] && grep -q "all rounds agree" <<<"$out" && pass ||
  fail "the servers' rounds differ (exit $rc)"
[ "$(grep -c ': ok$' <<<"$out")" = 12 ] && pass || fail "not all 12 pulls answered as expected"
grep -q "worker 1 takes part from round 2 on (this server is at round 2)" "$TMP/s0.log" && pass ||
  fail "server 0 did not log worker 1's first round: $(grep 'worker 1' "$TMP/s0.log")"
grep -q "worker 1 takes part from round 2 on (this server is at round 1)" "$TMP/s1.log" && pass ||
  fail "server 1 did not log worker 1's first round: $(grep 'worker 1' "$TMP/s1.log")"
ps_stop s0
ps_stop s1
for s in s0 s1; do
  [ "$(stat_of $s version)" = 3 ] && [ "$(stat_of $s pushes)" = 4 ] && pass ||
    fail "server $s: $(grep 'stats (final)' "$TMP/$s.log")"
done
finish
