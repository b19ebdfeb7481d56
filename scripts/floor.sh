#!/usr/bin/env bash
# Budget 10 of docs/performance.md: the server's CPU per sync against its
# HTTP floor (eventstreamd -bench-floor, esbench -mode floor), in RUNS
# interleaved pairs (sync, floor, sync, floor, …) against one server, at the
# load of budget 7: 100 streams × 10 clients × 5 syncs/s, 20% with an event.
# The server's CPU is read from /proc (esbench -server-pid). It prints each
# run, each pair's ratio, and the median of the ratios; PROFILE=dir also
# writes the server's CPU profile of each run there (sync-1.prof, …).
#
#   scripts/floor.sh                  # five pairs, 20 s each
#   RUNS=3 DURATION=10s scripts/floor.sh
#   SERVER=/tmp/old/eventstreamd scripts/floor.sh   # another build of the server
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
PORT=${PORT:-9947}
DEBUG_PORT=${DEBUG_PORT:-9948}
PROFILE=${PROFILE:-}

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
if [ -z "${SERVER:-}" ]; then
	go build -o "$bin/eventstreamd" ./cmd/eventstreamd
	SERVER=$bin/eventstreamd
fi
go build -o "$bin/esbench" ./cmd/esbench

"$SERVER" -addr 127.0.0.1:$PORT -debug-addr 127.0.0.1:$DEBUG_PORT -bench-floor -log-level warn -drain-delay 0 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$bin"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

seconds=${DURATION%s}
run() { # mode n: one esbench run, its server CPU per sync printed
	local mode=$1 n=$2 prof=""
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		(sleep "${WARMUP%s}"; curl -sf -o "$PROFILE/$mode-$n.prof" \
			"http://127.0.0.1:$DEBUG_PORT/debug/pprof/profile?seconds=$seconds") &
		prof=$!
	fi
	"$bin/esbench" -url "http://127.0.0.1:$PORT" -mode "$mode" -server-pid "$pid" \
		-streams 100 -clients 10 -rate 5 -event-share 0.2 \
		-duration "$DURATION" -warmup "$WARMUP" -json | jq -r '.server_cpu_us_per_sync'
	if [ -n "$prof" ]; then wait "$prof" || true; fi
}

ratios=()
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $(seq "$RUNS"); do
	sync=$(run sync "$n")
	floor=$(run floor "$n")
	ratio=$(awk -v s="$sync" -v f="$floor" 'BEGIN { printf "%.3f", s / f }')
	ratios+=("$ratio")
	printf 'run %d  sync %6.1f µs  floor %6.1f µs  %s×  (load %s)\n' "$n" "$sync" "$floor" "$ratio" "$(cut -d' ' -f1 /proc/loadavg)"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
	m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
	printf "median %.2f×  (%.2f×–%.2f×, %d pairs)\n", m, r[1], r[NR], NR }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
