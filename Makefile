# Sidekick: the two commands that matter are `make run` and `make test`.
# Everything here works on a fresh Debian machine with Go installed; missing
# prerequisites (PostgreSQL server binaries, the protobuf tools) are
# installed by the targets that need them.

SHELL := bash
GO ?= go
BIN := $(CURDIR)/bin
# Every module of the workspace, from go.work.
MODULES := $(shell $(GO) work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
PKGS := $(addsuffix /...,$(MODULES))
FUZZTIME ?= 10s
BENCHTIME ?= 2s
# make chaos: runs of every scenario; make chaos-short: what must hold in
# CI, nothing lost or doubled and everyone notified exactly once.
CHAOS_REPEAT ?= 1
CHAOS_STACKS ?= 1
CHAOS_REQUIRE ?= messages,notified

.PHONY: run test test-short test-e2e lint proto tools fuzz bench perf chaos chaos-short images restore-drill ensure-postgres ensure-promtool build help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: ensure-postgres ## Run the whole system in one process (sidekick dev)
	$(GO) build -o $(BIN)/sidekick ./sidekick/cmd/sidekick
	@trap '' INT; $(BIN)/sidekick dev

test: ensure-postgres ensure-promtool ## Every module's tests (unit, integration with embedded NATS and Postgres, end-to-end)
	@scripts/ensure-chromium.sh
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-short: ## Fast unit tests only
	$(GO) test -short -count=1 $(PKGS)

build: ## Build every binary into bin/
	$(GO) build -o $(BIN)/ ./sidekick/cmd/sidekick ./services/*/cmd/*

ensure-postgres:
	@scripts/ensure-postgres.sh

# promtool runs the alert rules' unit tests in go test ./deploy/...
ensure-promtool:
	@scripts/ensure-promtool.sh

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-go-vtproto ## Build buf and the protoc plugins pinned in proto/tools/go.mod

$(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-go-vtproto: proto/tools/go.mod
	cd proto/tools && GOWORK=off $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto

proto: tools ## Regenerate the Go code from proto/
	cd proto && rm -rf gen && PATH="$(BIN):$$PATH" buf generate

lint: tools ## gofmt, go vet, buf lint, tidy go.mod files, and a check that generated code is current
	@unformatted=$$(gofmt -l $(MODULES) | grep -v '\.pb\.go$$' || true); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@# Each module must build on its own (GOWORK=off), so its go.mod must be tidy.
	@for m in $(MODULES); do \
	  (cd $$m && GOWORK=off $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run 'cd $$m && GOWORK=off go mod tidy'"; exit 1; }; \
	done
	$(GO) vet $(PKGS)
	cd proto && PATH="$(BIN):$$PATH" buf lint
	@tmp=$$(mktemp -d); cp -r proto/gen $$tmp/gen; \
	  $(MAKE) --no-print-directory proto >/dev/null; \
	  if ! diff -r $$tmp/gen proto/gen >/dev/null; then \
	    echo "generated code in proto/gen is stale: run 'make proto' and commit"; diff -r $$tmp/gen proto/gen | head -20; rm -rf $$tmp; exit 1; fi; \
	  rm -rf $$tmp

fuzz: ## Run every fuzz target briefly (FUZZTIME, default 10s each)
	@scripts/fuzz-all.sh $(FUZZTIME)

bench: ensure-postgres ## Run the benchmarks (BENCHTIME, default 2s)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) $(PKGS)

perf: ensure-postgres ## The benchmarks behind docs/performance.md's targets, three runs each, fsync on, one table (PERF_RUNS, PERF_ONLY, PERF_HISTORY_DB, PERF_OUT)
	@scripts/perf.sh

chaos: ensure-postgres ## Kill services, NATS and Postgres under load; count lost, doubled and unnotified (CHAOS_REPEAT, CHAOS_STACKS, CHAOS_SCENARIOS, CHAOS_FLAGS; docs/reliability.md)
	$(GO) run ./bench/chaos -repeat $(CHAOS_REPEAT) -stacks $(CHAOS_STACKS) $(CHAOS_FLAGS)

chaos-short: ensure-postgres ## CI's chaos run: each service killed once under a small load (CHAOS_REQUIRE)
	$(GO) run ./bench/chaos -short -require $(CHAOS_REQUIRE) $(CHAOS_FLAGS)

restore-drill: ensure-postgres ## Back up a running stack's PostgreSQL, restore it to a point in time, check every record
	scripts/restore-drill.sh

images: ## Build the container images (needs a Docker engine)
	deploy/build-images.sh
