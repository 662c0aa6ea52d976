#!/bin/bash
# Counts the daemon's fdatasync calls while 2,000 characters are typed into `rrt tui`.
set -e
BIN=${1:-target/debug/rrt}
R=$(mktemp -d); mkdir -p $R/run $R/state
export XDG_RUNTIME_DIR=$R/run XDG_STATE_HOME=$R/state
$BIN --mesh fsm --instance a daemon --no-tcp --no-mdns --system-clipboard off >$R/daemon.log 2>&1 &
D=$!
for i in $(seq 100); do [ -S "$(ls $R/run/rrt/fsm/control-*.sock 2>/dev/null | head -1)" ] && break; sleep 0.1; done
strace -f -c -e trace=fdatasync,fsync -p $D -o $R/strace.txt &
S=$!
sleep 0.5
tmux -L fsm new-session -d -x 100 -y 30 "$BIN --mesh fsm --instance a tui --scratch m"
sleep 1
tmux -L fsm send-keys Tab
TEXT=$(python3 -c "print(''.join(chr(97+i%26) for i in range(100)))")
for i in $(seq 20); do tmux -L fsm send-keys -l "$TEXT"; done
for i in $(seq 100); do N=$($BIN --mesh fsm scratch cat m | wc -c); [ "$N" -ge 2000 ] && break; sleep 0.2; done
echo "document length: $N"
tmux -L fsm kill-server
kill -INT $S; wait $S 2>/dev/null || true
kill $D; wait $D 2>/dev/null || true
cat $R/strace.txt
