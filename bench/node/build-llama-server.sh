#!/usr/bin/env bash
# Builds llama.cpp's own llama-server from the exact pinned source the node's
# libraries come from (node-llama-cpp@3.21.1's llama/gitRelease.bundle), CPU
# only, for the side-by-side node benchmark. Cached: about 7 minutes on 2 cores
# the first time, nothing after. Prints the path of the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=3.21.1
out=third_party/llama-server
if [[ -x $out/bin/llama-server && -f $out/.version && $(cat $out/.version) == "$VERSION" ]]; then
  echo "$out/bin/llama-server"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-llama-cpp@$VERSION" >/dev/null && tar xzf "node-llama-cpp-$VERSION.tgz")
git clone -q "$tmp/package/llama/gitRelease.bundle" "$tmp/src" 2>/dev/null
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$tmp/build" --target llama-server llama-bench -j"$(nproc)" >/dev/null
mkdir -p "$out/bin"
cp "$tmp/build/bin/llama-server" "$tmp/build/bin/llama-bench" "$out/bin/"
echo "$VERSION" > "$out/.version"
echo "$out/bin/llama-server"
