# The server's memory stays bounded under the two attacks of issue 14, defect 6, read
# from its peak resident size (VmHWM in /proc/PID/status) with ps.max_memory_mb = 64:
#  - 16 connections send a 32 MiB frame each, all at once, before any HELLO:
#    each is refused from its length prefix (FRAME_TOO_LARGE: before HELLO is
#    accepted, at most 16 KiB), so the server never holds their bytes (before: 16 x 32
#    MiB, over 500 MiB);
#  - 8 members of a model of 1M floats (4 MB per reply) PULL again and again and read
#    nothing: all their unsent replies together stay within ps.max_memory_mb, the one
#    with the most is closed each time it would pass (before: up to ps.max_buffered_mb
#    = 128 MiB each, about 1 GiB).
# The server stays up throughout and stops cleanly. And the budget does not lose work:
# 8 members that push 2 MB each at once into a server that may hold 5 MiB take turns
# (a connection is not read while its frame does not fit) and all 8 pushes are applied.
# No timing is asserted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
BAD="$BUILD/tests/ps_bad_client"

# peak_mb NAME: the server's peak resident size so far, in MiB.
peak_mb() {
  local pid="PID_$1"
  awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/${!pid}/status"
}

# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default) before
# it is reused, which the resident size would count as the server's: keep it small so
# that the peaks below measure the server, not the sanitizer. (Other builds ignore it.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"

ps_start s0 --set ps.max_memory_mb=64 || finish
echo "peak at start: $(peak_mb s0) MiB"

out=$("$BAD" 127.0.0.1 "$PORT_s0" big_before_hello 32 16 2>&1) && pass || fail "big_before_hello: $out"
head -2 <<<"$out"
peak=$(peak_mb s0)
echo "peak after 16 x 32 MiB before HELLO: $peak MiB"
[ "$peak" -lt 160 ] && pass || fail "the server's peak RSS reached $peak MiB on frames before HELLO"
n=$(grep -c "FRAME_TOO_LARGE: a frame of 33554432 bytes before HELLO was accepted (until then at most 16385); closing it" "$TMP/s0.log")
[ "$n" -eq 16 ] && pass || fail "$n of 16 connections refused before HELLO: $(tail -3 "$TMP/s0.log")"

out=$("$BAD" 127.0.0.1 "$PORT_s0" unread_many 8 1000000 2>&1) && pass || fail "unread_many: $out"
echo "$out"
peak=$(peak_mb s0)
echo "peak after 8 members reading nothing: $peak MiB"
[ "$peak" -lt 160 ] && pass || fail "the server's peak RSS reached $peak MiB with 8 unread members"
grep -qE "^warning: connection .* \(worker 30[0-9][0-9]\): BUFFER_LIMIT: [0-9]+ bytes of output not read by the peer while all connections hold [0-9]+, over ps.max_memory_mb = 64; closing it$" \
  "$TMP/s0.log" && pass || fail "no member was closed for the memory budget: $(tail -3 "$TMP/s0.log")"

kill -0 "$PID_s0" 2>/dev/null && pass || fail "the server died"
ps_stop s0
grep -vE "^(stats|warning: connection)" "$TMP/s0.log"
ps_start s1 --set ps.max_memory_mb=5 --set ps.max_frame_mb=4 || finish
out=$("$BAD" 127.0.0.1 "$PORT_s1" push_many 8 500000 2>&1) && pass || fail "push_many: $out"
echo "$out"
peak=$(peak_mb s1)
echo "peak with 8 pushes of 2 MB at once: $peak MiB"
[ "$peak" -lt 40 ] && pass || fail "the server's peak RSS reached $peak MiB with ps.max_memory_mb = 5"
ps_stop s1
[ "$(stat_of s1 version)" = 8 ] && pass || fail "not all 8 pushes were applied: $(grep 'stats (final' "$TMP/s1.log")"

# A budget smaller than one frame could never receive the largest frame.
expect_exit 2 "max_memory_mb = 8 must be at least max_frame_mb = 64" "budget below a frame" -- \
  "$PS" --set ps.max_memory_mb=8
finish
