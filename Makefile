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
# validation and the load generator.
DEBS := golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
        golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev \
        golang-google-genproto-dev docker-compose wrk

.PHONY: help venv system-deps gen lint typecheck test test-unit test-integration up down status bench clean

help:
	@echo "make up      install what is missing and run the whole stack (Ctrl-C stops it)"
	@echo "make down    stop a stack started with 'make up ARGS=--detach'"
	@echo "make test    lint and run every test tier"
	@echo "make gen     regenerate gen/ from protos/"
	@echo "make bench   run the benchmark and write bench/RESULTS.md"

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

lint: venv
	@$(BIN)/python tools/third_party.py
	@$(BIN)/ruff check services tests tools bench
	@$(BIN)/ruff format --check services tests tools bench
	@$(BIN)/buf lint

typecheck: venv
	@$(BIN)/mypy

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test: venv system-deps lint typecheck
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

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

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache third_party
