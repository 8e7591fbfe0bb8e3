#!/bin/sh
# Regenerate api_pb2.py and api_pb2_grpc.py from api.proto. Needs grpcio-tools (a test extra);
# keep grpcio, grpcio-tools and protobuf pinned together in pyproject.toml: the generated code
# checks at import time that the runtime is at least the generator's version.
# Usage: engine/cri/proto/regen.sh [PYTHON]   (default: .venv/bin/python)
set -eu
cd "$(dirname "$0")/../../.."
PY="${1:-.venv/bin/python}"
OUT=engine/cri/proto
"$PY" -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. "$OUT/api.proto"
# generated code follows protoc's style, not ours
for f in "$OUT/api_pb2.py" "$OUT/api_pb2_grpc.py"; do
    { echo "# ruff: noqa"; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
