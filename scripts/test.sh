#!/usr/bin/env bash
# The test command: installs what is needed, builds, and runs every test
# (unit tests with cmocka, black-box suites with Node's test runner), all
# through ctest. Extra arguments go to ctest (e.g. -R router -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh
BUILD=${LLMR_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" -- --no-print-directory >/dev/null
echo "test.sh: built in $(( $(date +%s) - start ))s; running tests"
ctest --test-dir "$BUILD" --output-on-failure "$@"
