# llm-gateway: `make up` runs the stack, `make test` tests it. Every install step lives
# here so a clean clone needs nothing else.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

# Debian packages for the Go stubs (`make gen`, the Go client test), compose
# validation, the load generator, and the real Prometheus/Alertmanager the prometheus
# toolset tests start.
DEBS := golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
        golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev \
        golang-google-genproto-dev docker-compose wrk \
        prometheus prometheus-alertmanager

.PHONY: help venv system-deps gen render dashboards images model lint typecheck test test-unit fuzz up down status bench eval clean

help:
	@echo "make up      install what is missing and run the whole stack (Ctrl-C stops it)"
	@echo "make down    stop a stack started with 'make up ARGS=--detach'"
	@echo "make test    lint and run every test tier"
	@echo "make gen     regenerate gen/ from protos/"
	@echo "make bench   run the benchmark and write bench/RESULTS.md"
	@echo "make eval    run the investigation eval and write eval/RESULTS.md"
	@echo "make fuzz    a long random run of the fuzz tier (FUZZ_EXAMPLES=12000)"
	@echo "make render  re-render the Envoy, Kubernetes and Prometheus configs from envoy/topology.yaml"
	@echo "make dashboards  regenerate deploy/grafana/dashboards/*.json"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PY) -m venv $(VENV); }
	@echo "==> installing Python dependencies into $(VENV)"
	@$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	@$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

venv: $(STAMP)

system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

gen: venv system-deps
	@./tools/gen.sh

# Envoy's config for the container image, the generated Kubernetes manifests and the
# compose Prometheus scrape config, from envoy/topology.yaml (tests fail when stale).
render: venv
	@$(BIN)/python -m services.launcher.envoy_config --mode compose --out deploy/compose/envoy.yaml
	@$(BIN)/python -m services.launcher.k8s_render --out deploy/k8s
	@$(BIN)/python -m services.launcher.prometheus_config --mode compose --out deploy/compose/prometheus.yml

# Grafana's dashboards, from deploy/grafana/boards.py (a test fails when they are stale).
dashboards: venv
	@$(BIN)/python deploy/grafana/generate.py

# Container images (needs a Docker engine, which the development machines do not run).
images: render
	docker build -f deploy/Dockerfile -t llm-gateway:dev .
	docker build -f deploy/llama.Dockerfile -t llm-gateway-llama:dev .

lint: venv
	@$(BIN)/python tools/third_party.py
	@$(BIN)/ruff check services tests tools bench deploy eval
	@$(BIN)/ruff format --check services tests tools bench deploy eval
	@$(BIN)/buf lint

typecheck: venv
	@$(BIN)/mypy

# The real-model tests need llama-server: built once (minutes, with progress), then cached.
model: venv
	@$(BIN)/llmgw prepare-model

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test: venv system-deps lint typecheck model
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# A long, random run of the fuzz tier (make test runs a bounded, reproducible one).
FUZZ_EXAMPLES ?= 12000
fuzz: venv
	@LLMGW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LLMGW_FUZZ_RANDOM=1 $(BIN)/pytest tests/fuzz -s -p no:cacheprovider --timeout=0 $(PYTEST_ARGS)

test-unit: venv
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

up: venv
	@$(BIN)/llmgw up $(ARGS)

down: venv
	@$(BIN)/llmgw down

status: venv
	@$(BIN)/llmgw status

bench: venv system-deps
	@$(BIN)/python -m bench.run

# Ten alerts investigated by the analyzers alone, a scripted model and the embedded model
# (which `model` builds); EVAL_ARGS="--modes analyzers,scripted" leaves the model out.
EVAL_ARGS ?=
eval: venv system-deps model
	@$(BIN)/python -m eval.run $(EVAL_ARGS)

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache third_party
