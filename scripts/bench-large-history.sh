#!/usr/bin/env bash
# Usage: scripts/bench-large-history.sh target/release/rrt — a daemon with 50 history entries of 8 MB; then one 10-byte copy:
# its wall time, the daemon's peak RSS during it, and the bytes the daemon wrote for it.
set -euo pipefail
BIN=$1; D=$(mktemp -d); R="--runtime-dir $D/run"
$BIN $R daemon --no-mdns --no-tcp --state-dir $D/state --history 50 --system-clipboard off 2>$D/log &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf $D' EXIT
until $BIN $R status >/dev/null 2>&1; do sleep 0.05; done
python3 -c 'import sys; sys.stdout.write("y" * (8 * 1024 * 1024 - 16))' > $D/big
for i in $(seq 1 50); do
  { printf '%08d' $i; cat $D/big; } | $BIN $R clip copy
done
sync
echo 5 > /proc/$PID/clear_refs
before=$(awk '/^write_bytes/ {print $2}' /proc/$PID/io)
start=$(date +%s%N)
$BIN $R clip copy "ten bytes!"
end=$(date +%s%N)
after=$(awk '/^write_bytes/ {print $2}' /proc/$PID/io)
printf 'copy %d ms, peak RSS %s kB, written %d bytes, state %s\n' $(( (end - start) / 1000000 )) \
  "$(awk '/VmHWM/ {print $2}' /proc/$PID/status)" $(( after - before )) "$(du -sh $D/state | cut -f1)"
