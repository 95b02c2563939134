#!/bin/sh
# Regenerates everything under gen/ from protos/ (the only way gen/ may change):
# Python and Go stubs through `buf generate` (the Go ones as a Go module), and the
# descriptor set Envoy's gRPC-JSON transcoder reads. GEN_BASE=<dir> writes <dir>/gen instead (the drift test).
set -eu
cd "$(dirname "$0")/.."
PY=${LLMGW_PYTHON:-.venv/bin/python}
BUF=${BUF:-.venv/bin/buf}
BASE=${GEN_BASE:-.}

"$PY" tools/third_party.py
rm -rf "$BASE/gen"
"$BUF" generate --output "$BASE"
# The Go stubs are one Go module whose path is the go_package prefix of every proto
# (`llmgw`), so their own imports (`llmgw/common/v1`) resolve inside it. A client
# imports `llmgw/router/v1` and points the module at a checkout:
#   require llmgw v0.0.0
#   replace llmgw => /path/to/llm-gateway/gen/go/llmgw
# The requirements are the lowest versions the generated code needs (protoc-gen-go
# v1.28.1 output, grpc.SupportPackageIsVersion7, the google.rpc and google.api types).
cat > "$BASE/gen/go/llmgw/go.mod" <<'GOMOD'
module llmgw

go 1.19

require (
	google.golang.org/genproto v0.0.0-20200413115906-b5235f65be36
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
GOMOD
# Generated Python packages need __init__.py to be installable as regular packages.
find "$BASE/gen/python" -type d -exec touch {}/__init__.py \;
mkdir -p "$BASE/gen/descriptor"
# The descriptor set carries every import (googleapis, well-known types) and no source
# info: Envoy needs the types, not the comments.
"$BUF" build --exclude-source-info --as-file-descriptor-set -o "$BASE/gen/descriptor/llmgw.binpb"
echo "gen/ regenerated (python, go, descriptor set)"
