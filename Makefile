# eventstreamd — see README.md.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@latest
FUZZTIME    ?= 30s
BENCHCOUNT  ?= 6

.PHONY: all run run-redis demo build build-static docker test test-ts test-web test-short lint fmt tidy bench fuzz load sweep-load chaos soak hostile compare floor clean

all: lint test build

## run: serve on :9922 with the in-memory store (console logs)
run: build
	./bin/eventstreamd -log-format console

## run-redis: serve on :9922 from a local redis-server on :6379 (started if none answers), with the
## development secret unless EVENTSTREAMD_STORE_SECRET is set
run-redis: build
	@redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --port 6379 --appendonly yes --appendfsync always --daemonize yes --dir /tmp
	./bin/eventstreamd -log-format console -store redis://127.0.0.1:6379/0 -store-dev-secret

## demo: build Gem Rush (examples/web) and serve it on DEMO_ADDR (127.0.0.1:8080), playing on
## the eventstreamd of EVENTSTREAMD_URL (http://localhost:9922), with a Go bot in stream demo
## (DEMO_BOT=0: none; its lines go to bin/demo-bot.log): make run, make demo, open two tabs
DEMO_BOT ?= 1
demo:
	examples/web/build.sh
	$(GO) build -o bin/demo-serve ./examples/web/serve
	$(GO) build -o bin/demo-bot ./examples/web/bot
	@if [ "$(DEMO_BOT)" = 1 ]; then ./bin/demo-bot -stream demo >bin/demo-bot.log 2>&1 & bot=$$!; trap 'kill $$bot 2>/dev/null' EXIT; fi; \
	./bin/demo-serve

## build: build bin/eventstreamd
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/eventstreamd ./cmd/eventstreamd

## build-static: the static binary the container image holds
build-static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/eventstreamd-static ./cmd/eventstreamd

## docker: the container image, eventstreamd:$(VERSION)
docker:
	docker build --build-arg VERSION=$(VERSION) -t eventstreamd:$(VERSION) -t eventstreamd:latest .

## test: every test, under the race detector (of scripts/compare, centload's checks only: the
## comparison itself is make compare)
test:
	$(GO) test -race -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...
	cd scripts/compare && $(GO) test -count=1 ./...
	$(MAKE) test-ts
	$(MAKE) test-web

## test-ts: the TypeScript client's tests (clients/ts: npm ci, then node --test);
## skipped, and said so, without node and npm, except under CI=true where that fails
test-ts:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$${CI:-}" = true ]; then echo "test-ts: node and npm are required (CI=true)"; exit 1; fi; \
	  echo "*** SKIPPED: clients/ts tests: node and npm not found (install Node 20+) ***"; exit 0; \
	fi; \
	cd clients/ts && npm ci --no-audit --no-fund && npm test

## test-web: the browser demo's tests: its TS simulation against Go's vectors, and two tabs and
## a Go bot in Chromium (says what it skips where Node or Chromium is missing; under CI=true, fails)
test-web:
	examples/web/test/run.sh

## test-short: the tests that do not build binaries
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt, go vet, staticcheck and go mod tidy must leave nothing to say
lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd deploy && $(GO) vet ./... && $(GO) mod tidy -diff
	cd scripts/compare && $(GO) vet ./... && $(GO) mod tidy -diff

fmt:
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

## bench: the benchmarks, BENCHCOUNT times each, to compare with benchstat
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./... | tee bench.out
	@echo "compare two runs with: $(GO) run $(BENCHSTAT) old.out bench.out"

## fuzz: fuzz the sync handler and the client's reply decoder, FUZZTIME each
## (a new input is minimized for at most 10 s: the engine's pauses at 0 execs/s)
fuzz:
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzSync -fuzztime $(FUZZTIME) -fuzzminimizetime 10s
	$(GO) test ./pkg/esclient -run '^$$' -fuzz FuzzDecodeReply -fuzztime $(FUZZTIME) -fuzzminimizetime 10s
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzDecodeBody -fuzztime $(FUZZTIME) -fuzzminimizetime 10s

## chaos, soak, hostile: the fault campaign of docs/operations.md (minutes each)
chaos:
	bash scripts/chaos.sh
soak:
	bash scripts/soak.sh
hostile:
	bash scripts/hostile.sh

clean:
	rm -rf bin bench.out

## load: the esbench runs of docs/performance.md against a fresh local server
load: build
	$(GO) build -o bin/esbench ./cmd/esbench
	@set -e; \
	run() { ./bin/eventstreamd -addr 127.0.0.1:9933 -log-level warn -drain-delay 0 $$limits & pid=$$!; sleep 1; \
	        ./bin/esbench -url http://127.0.0.1:9933 "$$@" || true; kill $$pid; wait $$pid || true; }; \
	echo "== budget 2: closed loop vs /healthz, 64 clients"; \
	run -mode healthz -streams 8 -clients 8 -duration 10s; \
	limits="-max-syncs-per-second 0 -max-events-per-client-per-second 0 -max-stream-bytes-per-second 0"; \
	run -rate 0 -streams 8 -clients 8 -duration 10s; \
	limits=""; \
	echo "== budget 4: one stream, 1000 clients at 5 syncs/s, 5% with an event"; \
	run -streams 1 -clients 1000 -rate 5 -event-share 0.05 -duration 20s -warmup 5s; \
	echo "== budget 5: 500 streams x 4 clients at 5 syncs/s"; \
	run -streams 500 -clients 4 -rate 5 -duration 20s -warmup 5s; \
	echo "== budget 9: push, 500 streams x 4 clients and 1 stream x 1000 clients"; \
	run -transport push -streams 500 -clients 4 -rate 5 -event-share 0.2 -duration 10s -warmup 3s; \
	run -transport push -streams 1 -clients 1000 -rate 5 -event-share 0.02 -duration 10s -warmup 3s; \
	echo "== budget 11: 1000 clients of one stream joining at once"; \
	run -streams 1 -clients 1000 -rate 5 -join burst -duration 5s -warmup 1s

## floor: budget 10 of docs/performance.md: the server's CPU per sync against its HTTP floor, five
## interleaved pairs of esbench runs (scripts/floor.sh; RUNS, DURATION, PROFILE=dir, SERVER=binary)
floor:
	scripts/floor.sh

## compare: eventstreamd's push beside Centrifugo (installed into a temporary folder) at the same
## loads, one run on this machine, both rows printed (scripts/compare; a benchmark, not a test).
## COMPARE_FLAGS: e.g. -loads 500x4 -runs 2 -duration 30s -pprof /tmp/prof
compare:
	cd scripts/compare && $(GO) run . $(COMPARE_FLAGS)

## sweep-load: how late Redis sweeps disconnect 100k silent clients, with 1 and 3 replicas (docs/performance.md)
sweep-load:
	@set -e; port=6391; \
	redis-server --port $$port --save "" --appendonly no --daemonize yes --pidfile /tmp/eventstreamd-sweep-load.pid >/dev/null; \
	trap 'kill $$(cat /tmp/eventstreamd-sweep-load.pid)' EXIT; sleep 0.5; \
	for r in 1 3; do $(GO) run ./scripts/sweepload -redis redis://127.0.0.1:$$port/0 -streams 100000 -replicas $$r; done
