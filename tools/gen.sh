#!/bin/sh
# Regenerates everything under gen/ from protos/ (the only way gen/ may change):
# Python and Go stubs through `buf generate`, and the descriptor set Envoy's
# gRPC-JSON transcoder reads. GEN_BASE=<dir> writes <dir>/gen instead (the drift test).
set -eu
cd "$(dirname "$0")/.."
PY=${LLMGW_PYTHON:-.venv/bin/python}
BUF=${BUF:-.venv/bin/buf}
BASE=${GEN_BASE:-.}

"$PY" tools/third_party.py
rm -rf "$BASE/gen"
"$BUF" generate --output "$BASE"
# Generated Python packages need __init__.py to be installable as regular packages.
find "$BASE/gen/python" -type d -exec touch {}/__init__.py \;
mkdir -p "$BASE/gen/descriptor"
# The descriptor set carries every import (googleapis, well-known types) and no source
# info: Envoy needs the types, not the comments.
"$BUF" build --exclude-source-info --as-file-descriptor-set -o "$BASE/gen/descriptor/llmgw.binpb"
echo "gen/ regenerated (python, go, descriptor set)"
