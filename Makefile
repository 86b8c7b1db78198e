# certagent: build, test, measure. `make test` is the one test command (README, .ci/run).
# Every recipe runs under `bash -eo pipefail`, so any failing step fails the target loudly.

SHELL        := bash
.SHELLFLAGS  := -eo pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
PKG         := ./...
BIN         := bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
DEV_DIR     ?= .certagent-dev
FUZZTIME    ?= 60s
CI_FUZZTIME ?= 10s

# Packages whose tests link msgraph-sdk-go (about 35 MB of generated code). They run
# without -race: a race build of the SDK costs more CI time than all other tests together,
# and the concurrency they exercise (engine, intake, store, api, emulator) is race-tested in
# its own packages. Every other package runs with -race.
HEAVY_PKGS  := ./agent ./agent/graph/... ./cmd/...
LIGHT_PKGS   = $(shell $(GO) list ./... | grep -v -E '/agent$$|/agent/graph|/cmd/')

.PHONY: build build-windows test check fmt-check vet test-light test-heavy test-windows \
        fuzz fuzz-short bench dev clean tidy-check

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/certagent ./cmd/certagent

build-windows:
	GOOS=windows GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/certagent.exe ./cmd/certagent

## test: everything CI runs. Fails on the first failing step.
test: check test-light test-heavy fuzz-short test-windows
	@echo "make test: all passed"

## check: formatting, vet for both OSes, the Windows cross-build, go.mod tidiness.
check: fmt-check tidy-check
	$(GO) vet $(PKG)
	GOOS=windows $(GO) vet $(PKG)
	GOOS=windows GOARCH=amd64 $(GO) build $(PKG)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }

test-light:
	$(GO) test -race -count=1 $(LIGHT_PKGS)

test-heavy:
	$(GO) test -count=1 $(HEAVY_PKGS)

## test-windows: the Windows-only code (ACLs, no-replace rename, service glue) under Wine.
test-windows:
	scripts/wine-test.sh

# fuzz-short: a brief run for CI; minimizing a new input is capped so that the seconds go to
# fuzzing (minimizing the 64 KiB seeds alone can take the whole budget).
fuzz-short:
	$(GO) test -run='^$$' -fuzz=FuzzCheck -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./agent/certpolicy
	$(GO) test -run='^$$' -fuzz=FuzzParseDuration -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./agent/config

## fuzz: longer fuzzing runs (FUZZTIME=5m make fuzz).
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzCheck -fuzztime=$(FUZZTIME) ./agent/certpolicy
	$(GO) test -run='^$$' -fuzz=FuzzParseDuration -fuzztime=$(FUZZTIME) ./agent/config

## bench: micro-benchmarks and the end-to-end measurements (latency, flood, RSS, az).
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./agent/certpolicy ./agent/store ./agent/config ./emulator
	$(GO) test -run='^$$' -bench=BenchmarkFlood -benchtime=5x ./agent/intake
	$(GO) test -run='^$$' -bench=. -benchtime=10000x ./api
	$(GO) test -run='^$$' -bench=BenchmarkDropToApplied -benchtime=60x -timeout=30m ./internal/e2e
	$(GO) test -run='^$$' -bench=BenchmarkFlood -benchtime=1x -timeout=30m ./internal/e2e
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=30m ./internal/azcli

## dev: the whole product on this machine against an emulated tenant (Ctrl-C to stop).
dev: build
	$(BIN)/certagent dev --dir $(DEV_DIR)

clean:
	rm -rf $(BIN) $(DEV_DIR)
