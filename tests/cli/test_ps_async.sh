# Asynchronous training through one parameter server: 2 workers (each on its half of
# the 54,000 training images) push every step's gradient and pull the parameters;
# the server applies each push as it comes. 8 epochs of the MLP example reach more
# than 0.87 test accuracy on all 10,000 test images in both workers. Asynchrony adds
# momentum of its own (Mitliagkas et al. 2016), so the example's SGD momentum 0.9 is
# lowered to 0.5 with lr 0.1. The server applied exactly one update per push.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"

ps_start s0 || finish
for w in 0 1; do
  bg "w$w" "$WORKER" "${MLP[@]}" --set ps.servers="127.0.0.1:$PORT_s0" --set ps.worker_id=$w \
    --set ps.num_workers=2 --set train.epochs=8 --set optimizer.momentum=0.5 --set train.lr=0.1
done
wait_ok w0
wait_ok w1
ps_stop s0
cat "$TMP/w0.log" "$TMP/s0.log"
for w in 0 1; do
  grep -q "PS worker $w of 2: training samples \[$((w * 27000)), $(((w + 1) * 27000))) of 54000" \
    "$TMP/w$w.log" && pass || fail "worker $w: no line about its half of the data"
  expect_test_accuracy "$(cat "$TMP/w$w.log")" 10000 0.87
done
grep -q "consistency async" "$TMP/w0.log" && pass || fail "worker 0 did not report consistency async"
p0=$(pushes_of w0) p1=$(pushes_of w1)
[ "$p0" = 3368 ] && [ "$p1" = 3368 ] && pass || fail "pushes $p0 and $p1, expected 8 x 421 each"
v=$(stat_of s0 version)
[ "$v" = $((p0 + p1)) ] && pass || fail "server version $v, expected one update per push: $((p0 + p1))"
[ "$(stat_of s0 pushes)" = "$v" ] && pass || fail "server counted $(stat_of s0 pushes) pushes"
grep -q "worker 0 left (BYE)" "$TMP/s0.log" && grep -q "worker 1 left (BYE)" "$TMP/s0.log" &&
  pass || fail "the workers did not say BYE"
finish
