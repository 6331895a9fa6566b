#!/usr/bin/env bash
# Regenerates (or with --check, verifies) the README's configuration tables
# from the binaries' own option tables (`--help-markdown`).
#   scripts/gen-config-docs.sh [--check] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
build=${1:-build}
python3 - "$check" "$build" <<'PY'
import subprocess, sys, re
check, build = sys.argv[1] == "1", sys.argv[2]
readme = open("README.md").read()
out = readme
for name, binary in (("router", f"{build}/router/llm-router"), ("node", f"{build}/node/llm-node"),
                     ("mcp", f"{build}/mcp/llm-router-mcp")):
    begin, end = f"<!-- config:{name}:begin -->", f"<!-- config:{name}:end -->"
    if begin not in out:
        continue
    try:
        table = subprocess.run([binary, "--help-markdown"], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        continue
    out = re.sub(re.escape(begin) + ".*?" + re.escape(end),
                 begin + "\n" + table.strip() + "\n" + end, out, flags=re.S)
if check:
    if out != readme:
        sys.exit("README.md configuration tables are out of date: run scripts/gen-config-docs.sh")
    print("README configuration tables match the binaries")
else:
    open("README.md", "w").write(out)
PY
