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
        fuzz fuzz-short bench bench-speed bench-table stress dev clean tidy-check ps-module \
        test-powershell msi deb test-wine-service test-deb build-linux

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/certagent ./cmd/certagent

build-windows:
	GOOS=windows GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/certagent.exe ./cmd/certagent

build-linux:
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/certagent ./cmd/certagent

## test: everything CI runs. Fails on the first failing step.
test: check test-powershell test-light test-heavy fuzz-short test-windows test-wine-service test-deb
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

## test-wine-service: the Windows service (certagent install) and the MSI (two versions:
## install, upgrade, refused downgrade, repair, uninstall) under Wine, the MSI's tables, and
## Authenticode signing with a throwaway certificate (internal/winsvc).
WINE_MSI_DIR := $(BIN)/wine-msi
test-wine-service:
	scripts/msi-version.sh --test
	$(MAKE) --no-print-directory msi VERSION=v1.0.0 BIN=$(WINE_MSI_DIR)/old DIST=$(WINE_MSI_DIR)/old
	$(MAKE) --no-print-directory msi VERSION=v1.1.0 BIN=$(WINE_MSI_DIR)/new DIST=$(WINE_MSI_DIR)/new
	installer/windows/test-sign.sh $(WINE_MSI_DIR)/new/certagent.exe $(WINE_MSI_DIR)/new/CertAgent
	CERTAGENT_WINE=1 CERTAGENT_MSI_OLD=$(abspath $(WINE_MSI_DIR))/old/certagent-1.0.0-x64.msi \
	  CERTAGENT_MSI_NEW=$(abspath $(WINE_MSI_DIR))/new/certagent-1.1.0-x64.msi \
	  $(GO) test -count=1 -timeout 20m -v ./internal/winsvc

# The PowerShell module (scripts/CertAgent). pwsh does not run on these machines: the module is
# checked statically by scripts/pscheck (node and npm; .ci/run installs them), and its Pester
# tests (scripts/CertAgent/Tests) run on Windows.
DIST          := dist
PSCHECK       := scripts/pscheck
NODE          ?= node
# ModuleVersion is numeric (major.minor[.build[.revision]]): a tag v1.2.3 gives 1.2.3; a build
# without a version tag gives 0.0.1. ReleaseNotes keeps the whole $(VERSION).
PS_VERSION    ?= $(or $(shell echo '$(VERSION)' | sed -nE 's/^v?([0-9]+(\.[0-9]+){1,3}).*/\1/p'),0.0.1)

# The MSI (installer/windows). Windows Installer compares three numbers: scripts/msi-version.sh
# maps the git version to them (v1.2.3 -> 1.2.3000, 5 commits later -> 1.2.3005).
MSI_VERSION  ?= $(shell scripts/msi-version.sh '$(VERSION)')
MSI          := $(DIST)/certagent-$(MSI_VERSION)-x64.msi
SIGN_PFX     ?=
SIGN_PASS    ?=

## msi: dist/certagent-<version>-x64.msi with Debian's wixl; SIGN_PFX=file.pfx [SIGN_PASS=...]
## signs certagent.exe and the MSI (osslsigncode).
msi: build-windows ps-module
	installer/windows/build-msi.sh --exe $(BIN)/certagent.exe --module $(DIST)/CertAgent \
	  --version $(MSI_VERSION) --module-version $(PS_VERSION) --out $(MSI) \
	  $(if $(SIGN_PFX),--sign-pfx $(SIGN_PFX)) $(if $(SIGN_PASS),--sign-pass $(SIGN_PASS))

# The .deb (installer/linux). Debian versions start with a digit: v1.2.3 -> 1.2.3, five
# commits later 1.2.3+5.gabc1234, a build without a tag 0.0.0+gabc1234.
DEB_VERSION  ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; s/^([0-9a-f]{7,40})(-dirty)?$$/0.0.0+g\1\2/; s/-([0-9]+)-g([0-9a-f]+)/+\1.g\2/; s/-dirty$$/.dirty/; s/-/~/g')
DEB          := $(DIST)/certagent_$(DEB_VERSION)_amd64.deb

## deb: dist/certagent_<version>_amd64.deb with nfpm (go tool nfpm: a tool dependency of the
## module, so nothing is downloaded at build time). Staged, so that nfpm.yaml names fixed paths.
DEB_STAGE    := $(BIN)/deb-stage
deb: build-linux
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_STAGE) $(DIST)
	cp $(BIN)/linux-amd64/certagent installer/linux/* configs/certagent.example.yaml $(DEB_STAGE)/
	nfpm=$$($(GO) tool -n nfpm) && cd $(DEB_STAGE) && DEB_VERSION=$(DEB_VERSION) \
	  $$nfpm package --config nfpm.yaml --packager deb --target $(abspath $(DEB))

## test-deb: the .deb's metadata and contents, then dpkg -i / -r / -P into a temporary root.
test-deb: deb
	installer/linux/test-deb.sh $(DEB)

## ps-module: the module as shipped, with the build's version stamped in, in dist/CertAgent.
ps-module:
	rm -rf $(DIST)/CertAgent && mkdir -p $(DIST)
	cp -R scripts/CertAgent $(DIST)/CertAgent && rm -rf $(DIST)/CertAgent/Tests
	sed -i -E "s/^(\s*ModuleVersion\s*=\s*)'0\.0\.0'/\1'$(PS_VERSION)'/; s/^(\s*ReleaseNotes\s*=\s*)'[^']*'/\1'certagent $(VERSION)'/" $(DIST)/CertAgent/CertAgent.psd1
	grep -q "ModuleVersion *= *'$(PS_VERSION)'" $(DIST)/CertAgent/CertAgent.psd1

$(PSCHECK)/node_modules/.installed: $(PSCHECK)/package.json $(PSCHECK)/package-lock.json
	cd $(PSCHECK) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## test-powershell: parse and check the module (and the checker's self-test); no network.
test-powershell: ps-module $(PSCHECK)/node_modules/.installed
	$(NODE) --liftoff-only $(PSCHECK)/check.mjs --dist $(DIST)/CertAgent

# fuzz-short: a brief run for CI; minimizing a new input is capped so that the seconds go to
# fuzzing (minimizing the 64 KiB seeds alone can take the whole budget).
fuzz-short:
	$(GO) test -run='^$$' -fuzz=FuzzCheck -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./agent/certpolicy
	$(GO) test -run='^$$' -fuzz=FuzzParseDuration -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./agent/config
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./agent/config
	$(GO) test -run='^$$' -fuzz=FuzzSubmit -fuzztime=$(CI_FUZZTIME) -fuzzminimizetime=1s ./api

## fuzz: longer fuzzing runs of every target (FUZZTIME=5m make fuzz): the certificate parser,
## the config loader, the API's request decoding (body, file name, submission, query).
FUZZ_TARGETS := ./agent/certpolicy:FuzzCheck ./agent/certpolicy:FuzzGlobMatch \
                ./agent/config:FuzzParse ./agent/config:FuzzParseDuration \
                ./api:FuzzDecodeJSON ./api:FuzzCleanFileName ./api:FuzzSubmit ./api:FuzzQuery
fuzz:
	for t in $(FUZZ_TARGETS); do \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) "$${t%%:*}" || exit 1; \
	done

## bench: micro-benchmarks and the end-to-end measurements (latency, flood, RSS, az), then the
## speed table: each target of issue J with what was measured (benchmarks, never timed asserts).
BENCH_ROWS := $(CURDIR)/$(BIN)/bench-rows.tsv
bench:
	mkdir -p $(BIN) && rm -f $(BENCH_ROWS)
	$(GO) test -run='^$$' -bench=. -benchmem ./agent/certpolicy ./agent/provenance ./agent/store ./agent/config ./emulator
	$(GO) test -run='^$$' -bench=BenchmarkFlood -benchtime=5x ./agent/intake
	$(GO) test -run='^$$' -bench=. -benchtime=10000x ./api
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench=BenchmarkDropToApplied -benchtime=60x -timeout=30m ./internal/e2e
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench=BenchmarkFlood -benchtime=1x -timeout=30m ./internal/e2e
	$(MAKE) --no-print-directory bench-speed
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=30m ./internal/azcli
	$(MAKE) --no-print-directory bench-table

## bench-speed: the speed rows alone (binary size, cold start, idle, status under load).
bench-speed:
	mkdir -p $(BIN)
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench='BenchmarkBinarySize' -benchtime=1x ./internal/e2e
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench='BenchmarkColdStart' -benchtime=20x ./internal/e2e
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench='BenchmarkIdle' -benchtime=1x -timeout=10m ./internal/e2e
	CERTAGENT_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -run='^$$' -bench='BenchmarkStatusLoad' -benchtime=20000x ./internal/e2e

## bench-table: print the speed table from the rows the benchmarks wrote (the last of each).
bench-table:
	@echo; echo "certagent speed table"; echo
	@{ printf 'measurement\tmeasured\ttarget\tresult\n'; \
	  awk -F'\t' '{ if (!($$1 in row)) order[++n] = $$1; row[$$1] = $$0 } END { for (i = 1; i <= n; i++) print row[order[i]] }' $(BENCH_ROWS); } \
	  | column -t -s "$$(printf '\t')"

## stress: the reliability proof (issue J), not part of `make test`: the crash campaign (kill -9
## at random instants, STRESS_RUNS runs), the Graph fault matrix, hostile input. Prints one table
## (README, "Reliability"); fails when a row misses its target. STRESS_SEED repeats a campaign.
STRESS_RUNS ?= 200
STRESS_SEED ?= 0
stress:
	cd internal/stress && $(GO) test -count=1 -timeout 90m -stress -stress.runs=$(STRESS_RUNS) -stress.seed=$(STRESS_SEED) -stress.out=$(CURDIR)/$(BIN)/stress-table.md

## dev: the whole product on this machine against an emulated tenant (Ctrl-C to stop).
dev: build
	$(BIN)/certagent dev --dir $(DEV_DIR)

clean:
	rm -rf $(BIN) $(DEV_DIR)
