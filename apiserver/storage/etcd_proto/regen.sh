#!/bin/sh
# Regenerate rpc_pb2.py and rpc_pb2_grpc.py from rpc.proto. Needs grpcio-tools (a test extra);
# keep grpcio, grpcio-tools and protobuf pinned together in pyproject.toml: the generated code
# checks at import time that the runtime is at least the generator's version.
# Usage: apiserver/storage/etcd_proto/regen.sh [PYTHON]   (default: .venv/bin/python)
set -eu
cd "$(dirname "$0")/../../.."
PY="${1:-.venv/bin/python}"
OUT=apiserver/storage/etcd_proto
"$PY" -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. "$OUT/rpc.proto"
# generated code follows protoc's style, not ours
for f in "$OUT/rpc_pb2.py" "$OUT/rpc_pb2_grpc.py"; do
    { echo "# ruff: noqa"; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
