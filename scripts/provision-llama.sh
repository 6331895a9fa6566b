#!/usr/bin/env bash
# Provides llama.cpp for the node: a system install when pkg-config finds one,
# otherwise the prebuilt shared libraries of the pinned npm package
# @node-llama-cpp/linux-x64 plus headers from the exact llama.cpp commit they were
# built from (node-llama-cpp's llama/gitRelease.bundle). Result: third_party/llama/
# {include,lib}. Idempotent (a stamp names the pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.21.1
dest=third_party/llama
stamp=$dest/.version

if pkg-config --exists llama 2>/dev/null; then
  echo "provision-llama: using system llama.cpp $(pkg-config --modversion llama)"
  exit 0
fi
if [[ -f $stamp && $(cat "$stamp") == "$VERSION" ]]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "provision-llama: fetching node-llama-cpp@$VERSION and @node-llama-cpp/linux-x64@$VERSION"
if ! out=$(cd "$tmp" && npm pack --loglevel=error "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION" 2>&1 >/dev/null); then
  echo "provision-llama: npm could not fetch the packages (registry unreachable, proxy or CA certificates?):" >&2
  echo "$out" >&2
  exit 1
fi
mkdir -p "$tmp/a" "$tmp/b"
tar xzf "$tmp/node-llama-cpp-$VERSION.tgz" -C "$tmp/a"
tar xzf "$tmp/node-llama-cpp-linux-x64-$VERSION.tgz" -C "$tmp/b"
git clone -q "$tmp/a/package/llama/gitRelease.bundle" "$tmp/src" 2>/dev/null

rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib"
cp "$tmp/src/include/llama.h" "$tmp/src/ggml/include/"*.h "$dest/include/"
# every CPU variant ships: ggml picks the best one for this processor at run time
cp "$tmp/b/package/bins/linux-x64/"lib*.so "$dest/lib/"
git -C "$tmp/src" rev-parse HEAD > "$dest/COMMIT"
echo "$VERSION" > "$stamp"
echo "provision-llama: llama.cpp $(cat "$dest/COMMIT") in $dest"
