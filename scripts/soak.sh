#!/usr/bin/env bash
# The soak of docs/operations.md: eventstreamd with the memory store, then
# with Redis, each driven for DURATION (default 30m) at 2000 syncs/s by
# games that start and end all the time (scripts/soak). Prints a table of
# samples per store. Needs redis-server for the second run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30m}
STORES=${STORES:-"memory redis"}
make build >/dev/null
go build -o bin/soak ./scripts/soak
port=9944
for store in $STORES; do
  args=(-addr 127.0.0.1:$port -log-level warn -drain-delay 0 -client-timeout 2s -stream-ttl 5s)
  redis=()
  if [ "$store" = redis ]; then
    rport=6392
    redis-server --port $rport --save "" --appendonly no --daemonize yes --pidfile /tmp/eventstreamd-soak-redis.pid >/dev/null
    sleep 0.5
    args+=(-store redis://127.0.0.1:$rport/0 -store-secret soak-secret-0123456789)
    redis=(-redis 127.0.0.1:$rport)
  fi
  ./bin/eventstreamd "${args[@]}" & pid=$!
  sleep 1
  echo "== $store store, $DURATION"
  ./bin/soak -url http://127.0.0.1:$port -duration "$DURATION" "${redis[@]}" || true
  kill $pid; wait $pid || true
  if [ "$store" = redis ]; then kill "$(cat /tmp/eventstreamd-soak-redis.pid)"; fi
done
