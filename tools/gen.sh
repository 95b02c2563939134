#!/bin/sh
# Regenerates everything under gen/ from protos/ (the only way gen/ may change):
# Python and Go stubs through `buf generate`, and the descriptor set Envoy's
# gRPC-JSON transcoder reads.
set -eu
cd "$(dirname "$0")/.."
PY=${LLMGW_PYTHON:-.venv/bin/python}
BUF=${BUF:-.venv/bin/buf}

"$PY" tools/third_party.py
rm -rf gen
"$BUF" generate
# Generated Python packages need __init__.py to be installable as regular packages.
find gen/python -type d -exec touch {}/__init__.py \;
mkdir -p gen/descriptor
# The descriptor set carries every import (googleapis, well-known types) and no source
# info: Envoy needs the types, not the comments.
"$BUF" build --exclude-source-info --as-file-descriptor-set -o gen/descriptor/llmgw.binpb
echo "gen/: python, go and descriptor set regenerated"
