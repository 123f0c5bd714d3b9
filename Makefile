# clusterpki — make targets. Run `make help` for the list.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES      := apis pkg ca-operator cert-operator plugin test test/kit bench
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS      := -s -w -X github.com/clusterpki/clusterpki/pkg/version.Version=$(VERSION) -X github.com/clusterpki/clusterpki/pkg/version.Commit=$(COMMIT)
BIN          := $(CURDIR)/bin
TEST_TIMEOUT ?= 45m
GOTESTFLAGS  ?=

.PHONY: help
help: ## Show this help.
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build both operators into ./bin.
	@mkdir -p $(BIN)
	cd ca-operator && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ca-operator .
	cd cert-operator && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cert-operator .

.PHONY: plugin
plugin: ## Build the kubectl plugin (kubectl clusterpki) into ./bin.
	@mkdir -p $(BIN)
	cd plugin && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-clusterpki ./cmd/kubectl-clusterpki
	@echo "built $(BIN)/kubectl-clusterpki; put it on PATH to run it as 'kubectl clusterpki':"
	@echo "  export PATH=\"$(BIN):\$$PATH\"   # or: cp $(BIN)/kubectl-clusterpki /usr/local/bin/"

.PHONY: tools
tools: ## Build etcd, kube-apiserver, Vault and promtool (cached outside the clone; progress every 10s).
	scripts/build-tools.sh

.PHONY: generate
generate: ## Regenerate clients, deepcopy, register code and CRDs from the API types.
	scripts/update-codegen.sh

.PHONY: verify
verify: ## Check generated code, CRDs, gofmt and go vet.
	scripts/verify-codegen.sh
	@out=$$(gofmt -l $(MODULES)); if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	for m in $(MODULES); do (cd $$m && go vet ./...); done

.PHONY: test
test: verify tools ## Run verify, then unit and integration tests (real etcd, kube-apiserver, Vault) with -race.
	for m in $(MODULES); do (cd $$m && go test -race -count=1 -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...); done

.PHONY: tidy
tidy: ## go mod tidy every module without the workspace.
	for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

.PHONY: local-up
local-up: tools ## Start a local etcd, kube-apiserver and Vault (.local/env).
	scripts/local-up.sh

.PHONY: local-down
local-down: ## Stop what local-up started.
	scripts/local-down.sh

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)

.PHONY: images
images: ## Build both operator images (no Docker needed) and push them to REGISTRY, or to a local loopback registry.
	VERSION=$(VERSION) COMMIT=$(COMMIT) scripts/images.sh

.PHONY: e2e
e2e: tools ## Run the end-to-end test: deploy/ applied with kubectl, both operators, Vault, the examples.
	cd test && go test -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) -v -count=1 ./e2e/...

.PHONY: demo
demo: ## Run everything locally and boot an API server from the issued certificates (DEMO_EXIT=1: exit after; DEMO_FLAGS=--rotate-root: then rotate the root under a guest cluster).
	@mkdir -p $(BIN)
	cd test && go build -o $(BIN)/clusterpki-demo ./demo
	$(BIN)/clusterpki-demo --bin-dir $(BIN) --rebuild $(DEMO_FLAGS)

.PHONY: demo-down
demo-down: ## Stop a demo left running (state in .local/demo).
	@mkdir -p $(BIN)
	@test -x $(BIN)/clusterpki-demo || (cd test && go build -o $(BIN)/clusterpki-demo ./demo)
	$(BIN)/clusterpki-demo --down $(DEMO_FLAGS)

BENCH_FLAGS ?=

.PHONY: bench
bench: build tools ## Run the benchmark (issue 7) and write bench/results/ (BENCH_FLAGS="--quick" for a small run).
	cd bench && go build -o $(BIN)/clusterpki-bench .
	$(BIN)/clusterpki-bench --bin-dir $(BIN) --results $(CURDIR)/bench/results --repo $(CURDIR) $(BENCH_FLAGS)
