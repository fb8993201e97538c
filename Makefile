# One entry point for humans and CI (.ci/run calls `make test`).
#
#   make test        fmt-check, vet, staticcheck, build, then the whole suite with -race
#   make lint        fmt-check, vet, staticcheck
#   make test-short  quick unit tests (-short skips tests that need redis-server)
#   make chaos       the fault-injection suite (tests/chaos) at full size: 10,000 instances, every fault kind
#   make run         dev mode with an embedded Redis
#   make bench       benchmark programs; results go to bench/RESULTS.md by hand

GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt

# staticcheck v0.8.2 (2026.2.2) is built with and supports Go 1.26. It is
# installed into $(GOPATH)/bin and called by full path, so PATH does not matter.
STATICCHECK_VERSION := v0.8.2
GOBIN_DIR := $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck

# PKGS and FMT_DIR narrow the checks, e.g. make test PKGS=./capability/... FMT_DIR=capability
PKGS ?= ./...
FMT_DIR ?= .
TEST_TIMEOUT ?= 14m
CHAOS_TIMEOUT ?= 60m

.DEFAULT_GOAL := test

.PHONY: test build lint fmt-check vet staticcheck staticcheck-install run test-short chaos bench

test: fmt-check vet staticcheck build
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

build:
	$(GO) build $(PKGS)

lint: fmt-check vet staticcheck

# gofmt -l over every .go file except vendor/; fails listing the files that need formatting.
fmt-check:
	@files=$$(find $(FMT_DIR) -path '*/vendor' -prune -o -path '*/.git' -prune -o -name '*.go' -print); \
	if [ -z "$$files" ]; then exit 0; fi; \
	out=$$($(GOFMT) -l $$files) || exit 1; \
	if [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$out"; \
		exit 1; \
	fi

# Vet twice: the default build, and with the chaos tag so fault tests keep compiling.
vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags chaos $(PKGS)

staticcheck: staticcheck-install
	$(STATICCHECK) $(PKGS)

# Installs the pinned staticcheck when it is missing or another version.
staticcheck-install:
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -q "($(STATICCHECK_VERSION:v%=%))"; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
		GOBIN="$(GOBIN_DIR)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

run:
	$(GO) run ./cmd/duroworker dev

test-short:
	$(GO) test -short ./...

# The build tag chaos selects the full size of TestChaos (its short version runs
# in make test); -v prints its progress and summary table. CHAOS_ENV passes
# overrides, e.g. make chaos CHAOS_ENV="DUROWORKER_CHAOS_INSTANCES=2000".
CHAOS_ENV ?=
chaos:
	$(CHAOS_ENV) $(GO) test -race -tags chaos -count=1 -timeout $(CHAOS_TIMEOUT) -v -run 'TestChaos$$' ./tests/chaos/

bench:
	$(GO) run ./cmd/duroworker bench all --vs go-workflows,asynq --runs 3
