# hubjobs — developer and CI entry points. `make test` is THE test command
# (README, .ci/run): on a fresh Debian 12 machine with only Go it installs what
# the tests need (scripts/install-deps.sh) and runs every check in order.
#
#   make test    deps, templ output check, vet, gofmt, go test -race, fuzz smoke
#   make e2e     deps + the browser end-to-end tests only (verbose)
#   make run     the demo: portal, two simulated hubs, demo IdP
#   make fuzz    longer fuzzing of every Fuzz target (FUZZTIME=1m by default;
#                FUZZ_PKGS=./hub/... to narrow it)
#   make bench   the docs/contract.md budgets against `hubjobs demo` (go run ./bench,
#                ~2 min; BENCH_FLAGS="-poll 20s -rounds 1" for a quick run)
#   make bench-go  every Go benchmark (go test -bench), e2e login round trip included
#   make deps    only install / build / start the test infrastructure
#
# Tunables: GOTEST_FLAGS, FUZZ_BUDGET (seconds for the smoke pass), FUZZTIME.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
# The steps of `test` depend on each other's side effects (deps before tests);
# never run them concurrently even under make -j.
.NOTPARALLEL:

# What the tests find through the environment (e2e/browser_test.go and e2e/dex_test.go, the audit PostgreSQL tests).
export HUBJOBS_CHROMIUM ?= /usr/bin/chromium
export HUBJOBS_DEX_BIN ?= $(CURDIR)/.cache/bin/dex
export HUBJOBS_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
# libpq-style defaults, honoured by pgx when a test passes an empty DSN.
export PGHOST ?= 127.0.0.1
export PGPORT ?= 5432
export PGUSER ?= postgres
export PGDATABASE ?= test
export PGSSLMODE ?= disable

GOTEST_FLAGS ?= -race -count=1 -timeout 15m
FUZZ_BUDGET ?= 60
export FUZZ_BUDGET
FUZZ_PKGS ?= ./...

.PHONY: test deps dex generate-check vet fmt-check unit fuzz-smoke e2e run fuzz bench bench-go

test: deps generate-check vet fmt-check unit fuzz-smoke
	@echo "make test: all checks passed"

deps:
	scripts/install-deps.sh

dex:
	scripts/install-deps.sh dex

generate-check:
	scripts/check-generated.sh

vet:
	scripts/vet.sh

fmt-check:
	@unformatted="$$(gofmt -l $$(find . -name '*.go' -not -path './.cache/*' -not -path './.git/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi; \
	echo "gofmt: clean"

unit:
	go test $(GOTEST_FLAGS) ./...

fuzz-smoke:
	scripts/fuzz-smoke.sh

e2e: deps
	go test $(GOTEST_FLAGS) -v ./e2e/

run:
	go run ./cmd/hubjobs demo

fuzz:
	FUZZTIME=$${FUZZTIME:-1m} scripts/fuzz-smoke.sh $(FUZZ_PKGS)

bench:
	go run ./bench $(BENCH_FLAGS)

bench-go: deps
	go test -run '^$$' -bench . -benchmem ./...
