# eventstreamd — see README.md.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@latest
FUZZTIME    ?= 30s
BENCHCOUNT  ?= 6

.PHONY: all run build build-static test test-short lint fmt tidy bench fuzz clean

all: lint test build

## run: serve on :9922 with the in-memory store (console logs)
run: build
	./bin/eventstreamd -log-format console

## build: build bin/eventstreamd
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/eventstreamd ./cmd/eventstreamd

## build-static: the static binary the container image holds
build-static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/eventstreamd-static ./cmd/eventstreamd

## test: every test, under the race detector
test:
	$(GO) test -race -count=1 ./...

## test-short: the tests that do not build binaries
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt, go vet, staticcheck and go mod tidy must leave nothing to say
lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

fmt:
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

## bench: the benchmarks, BENCHCOUNT times each, to compare with benchstat
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./... | tee bench.out
	@echo "compare two runs with: $(GO) run $(BENCHSTAT) old.out bench.out"

## fuzz: fuzz the sync handler for FUZZTIME
fuzz:
	$(GO) test ./internal/api -run '^$$' -fuzz FuzzSync -fuzztime $(FUZZTIME)

clean:
	rm -rf bin bench.out
