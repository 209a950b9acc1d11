# earshot — make help lists the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin
PKGS    := ./...
ARGS    ?=
# The cgo speech parts: PocketSphinx (the embedded recogniser) and libopus (the
# simulator's Opus encoder; nolibopusfile keeps libopusfile out). A plain `go build ./...`
# without them still builds: the gateway then says it takes text only.
TAGS    := pocketsphinx libopus nolibopusfile
GOTAGS  := -tags '$(TAGS)'

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install missing system packages and Go modules (idempotent)
	@.ci/deps.sh

.PHONY: build
build: ## build bin/earshot, bin/earshot-sim, bin/earshot-speech-eval (with PocketSphinx and libopus) and the Mosquitto plugin
	$(GO) build $(GOTAGS) -o $(BIN)/ ./cmd/earshot ./cmd/earshot-sim ./cmd/earshot-speech-eval
	$(GO) build -tags mosquitto -buildmode=c-shared -o $(BIN)/earshot-mosquitto-auth.so ./cmd/earshot-mosquitto-auth

.PHONY: run
run: deps build ## start the gateway with embedded defaults (./data, http://127.0.0.1:8080, MQTT on 127.0.0.1:1883)
	$(BIN)/earshot serve $(ARGS)

.PHONY: sim
sim: build ## run the simulator: make sim ARGS='say "buy two oat lattes" --confirm'
	$(BIN)/earshot-sim $(ARGS)

.PHONY: demo
demo: build ## start a throwaway gateway and run every shipped scenario over WebSocket, MQTT and WebRTC
	@BIN=$(BIN) .ci/demo.sh

.PHONY: test
test: deps lint build ## everything CI runs: vet, the race-enabled suite with integration tests, demo, benchmarks once
	@BIN=$(BIN) .ci/demo.sh
	$(GO) test $(GOTAGS) -race -count=1 -timeout 20m $(PKGS)
	$(GO) test $(GOTAGS) -race -count=1 -run '^$$' -bench . -benchtime 1x $(PKGS)

.PHONY: bench
bench: ## run the benchmarks with real iteration counts
	$(GO) test $(GOTAGS) -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: speech-eval
speech-eval: deps build ## the speech accuracy harness over the full generated set (intent accuracy, false accepts)
	$(BIN)/earshot-speech-eval $(ARGS)

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test $(GOTAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet $(GOTAGS) $(PKGS)
	$(GO) vet -tags mosquitto ./cmd/earshot-mosquitto-auth/...

.PHONY: clean
clean: ## remove build output (not ./data)
	rm -rf $(BIN)
