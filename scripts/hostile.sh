#!/usr/bin/env bash
# The slow and hostile clients of docs/operations.md: while scripts/hostile
# holds 10 000 idle connections, 200 slowloris connections and a flooder,
# esbench plays 100 streams × 4 well-behaved clients at 5 syncs/s and
# reports their latency; the server's memory is read from /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60s}
make build >/dev/null
go build -o bin/esbench ./cmd/esbench
go build -o bin/hostile ./scripts/hostile
ulimit -n 65536 2>/dev/null || true
port=9946
./bin/eventstreamd -addr 127.0.0.1:$port -log-level warn -drain-delay 0 & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
./bin/hostile -addr 127.0.0.1:$port -duration "$DURATION" >/tmp/eventstreamd-hostile.out 2>&1 & attack=$!
sleep 15 # the idle connections are opened
./bin/esbench -url http://127.0.0.1:$port -streams 100 -clients 4 -rate 5 -event-share 0.2 -duration 30s -warmup 3s
curl -s http://127.0.0.1:$port/metrics | grep -E '^(go_memstats_heap_alloc_bytes|go_goroutines|process_resident_memory_bytes|process_open_fds) '
curl -s http://127.0.0.1:$port/metrics | grep -E '^eventstreamd_http_rejections_total\{code="(rate_limited|server_busy)"\}'
wait $attack || true
cat /tmp/eventstreamd-hostile.out
