#!/usr/bin/env bash
# The chaos run of docs/operations.md: three replicas on one redis-server
# with AOF (appendfsync always) behind deploy/haproxy/haproxy.cfg, esbench
# playing through the balancer and verifying order and exactly-once at the
# end, while a loop kills (SIGKILL) a random replica every 2-5 s and starts
# it again, and redis-server itself is killed and restarted twice.
# DURATION (default 5m) is esbench's measured time. Needs redis-server and
# haproxy. Exits non-zero unless esbench verified the run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
make build >/dev/null
go build -o bin/esbench ./cmd/esbench
dir=$(mktemp -d)
rport=${REDIS_PORT:-6393}
lbport=${LB_PORT:-9950}
ports=(9951 9952 9953)
pids=()

start_redis() {
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always --save "" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
start_replica() { # index
  EVENTSTREAMD_STORE=redis://127.0.0.1:$rport/0 EVENTSTREAMD_STORE_SECRET=chaos-secret-0123456789 \
    ./bin/eventstreamd -addr "127.0.0.1:${ports[$1]}" -log-level warn -drain-delay 0 >>"$dir/replica-$1.log" 2>&1 &
  pids[$1]=$!
}
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${lb:-}" ] && kill "$lb" 2>/dev/null || true
  [ -f "$dir/redis.pid" ] && kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
}
trap cleanup EXIT

start_redis
for i in 0 1 2; do start_replica $i; done
cfg=$(sed -e "s/bind :9922/bind 127.0.0.1:$lbport/" deploy/haproxy/haproxy.cfg)
for i in 0 1 2; do cfg=${cfg//eventstreamd-$((i + 1)):9922/127.0.0.1:${ports[$i]}}; done
echo "$cfg" >"$dir/haproxy.cfg"
haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
lb=$!
sleep 2

./bin/esbench -url "http://127.0.0.1:$lbport" -streams 20 -clients 4 -rate 5 -event-share 0.3 \
  -duration "$DURATION" -warmup 2s -timeout 5s >"$dir/esbench.out" 2>&1 &
bench=$!

kills=0 redis_restarts=0
secs=$(( $(echo "$DURATION" | sed 's/m$/*60/; s/s$//' | bc) ))
start=$(date +%s)
while kill -0 "$bench" 2>/dev/null; do
  sleep $((2 + RANDOM % 4))
  kill -0 "$bench" 2>/dev/null || break
  elapsed=$(( $(date +%s) - start ))
  if { [ $redis_restarts -eq 0 ] && [ $elapsed -gt $((secs / 3)) ]; } || { [ $redis_restarts -eq 1 ] && [ $elapsed -gt $((2 * secs / 3)) ]; }; then
    kill -9 "$(cat "$dir/redis.pid")"; sleep 1; start_redis
    redis_restarts=$((redis_restarts + 1))
    echo "$(date +%T) redis-server killed and restarted ($redis_restarts)"
    continue
  fi
  i=$((RANDOM % 3))
  kill -9 "${pids[$i]}" 2>/dev/null || true
  wait "${pids[$i]}" 2>/dev/null || true
  start_replica $i
  kills=$((kills + 1))
done
wait "$bench" || true
echo "replicas killed and restarted: $kills; redis-server killed and restarted: $redis_restarts"
cat "$dir/esbench.out"
grep -q "verified" "$dir/esbench.out"
