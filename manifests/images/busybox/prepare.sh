#!/bin/sh
# Put this machine's static busybox into the build context (the Dockerfile COPYs ./busybox).
# Usage: prepare.sh [CONTEXT_DIR]   (default: the directory of this script)
set -eu
dir=${1:-$(dirname "$0")}
src=/bin/busybox
if ! [ -x "$src" ]; then
    echo "prepare.sh: $src not found: install the busybox-static package" >&2
    exit 1
fi
if ldd "$src" >/dev/null 2>&1; then
    echo "prepare.sh: $src is dynamically linked: install busybox-static, not busybox" >&2
    exit 1
fi
cp "$src" "$dir/busybox"
