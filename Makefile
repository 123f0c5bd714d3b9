# clusterpki — make targets. Run `make help` for the list.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES      := apis pkg ca-operator cert-operator test
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS      := -s -w -X github.com/clusterpki/clusterpki/pkg/version.Version=$(VERSION) -X github.com/clusterpki/clusterpki/pkg/version.Commit=$(COMMIT)
BIN          := $(CURDIR)/bin
TEST_TIMEOUT ?= 45m
GOTESTFLAGS  ?=

.PHONY: help
help: ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build both operators into ./bin.
	@mkdir -p $(BIN)
	cd ca-operator && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ca-operator .
	cd cert-operator && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cert-operator .

.PHONY: tools
tools: ## Build etcd, kube-apiserver and Vault (cached outside the clone).
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
	for m in $(MODULES); do (cd $$m && go test -race -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...); done

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
