#!/usr/bin/env bash
# Proxy benchmark (issue 5): llm-router against direct, nginx, haproxy and the
# Portkey gateway, side by side in one run, each proxy pinned to core 0 and the
# load (wrk, sse_load) and the C mock node on core 1. Prints one table.
#   bench/router/run.sh            (REPEATS=3 DURATION=5 by default)
#   bench/router/run.sh --attack   also the "under attack" table (issue 13, ~2 min more):
#                                  legit load while 64 unauthenticated connections send 16 MiB
#                                  bodies (bench/router/attack.py), llm-router vs nginx with a
#                                  header check; --attack-only for that table alone
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh --bench >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" -- --no-print-directory >/dev/null
if [[ ! -d bench/router/portkey/node_modules/@portkey-ai ]]; then
  (cd bench/router/portkey && npm ci --no-audit --no-fund --loglevel=error)
fi
ulimit -n 65536 || true
exec python3 bench/router/run.py --build build-bench "$@"
