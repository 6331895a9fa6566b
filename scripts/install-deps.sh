#!/usr/bin/env bash
# Installs everything llm-router needs on a Debian 12 machine (run as root).
# Idempotent: when everything is present it only checks and returns in seconds.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --bench    also the benchmark anchors (nginx, haproxy, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

# libclang-rt-dev: the ASan/UBSan, TSan and libFuzzer runtimes for .ci/run's clang sanitizer
# builds (clang only recommends it, and recommends are not installed here); llvm:
# llvm-symbolizer, which the sanitizers run to name functions in their reports
# and to match TSan suppressions (without it each match logs a warning);
# chromium: the browser the dashboard's tests drive (playwright-core, tests only)
pkgs=(build-essential gcc clang libclang-rt-dev llvm cmake pkg-config git ca-certificates curl
      libevent-dev libhttp-parser-dev libcurl4-openssl-dev libssl-dev libcjson-dev libjsmn-dev libsqlite3-dev sqlite3
      libjwt-dev libsodium-dev libcmocka-dev libmimalloc-dev python3 nodejs npm
      prometheus chromium openssl)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(wrk nginx-light haproxy linux-perf)
fi

missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from outside Debian (a newer node is already on PATH): accept that.
  if [[ $p == nodejs || $p == npm ]] && command -v "${p/nodejs/node}" >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_=sudo
  $sudo_ apt-get update -qq
  # prometheus is here for its promtool (tests/e2e/router_metrics.test.mjs runs
  # `promtool check metrics`); its server must not start: a policy-rc.d that
  # refuses every start keeps invoke-rc.d from launching it during the install
  # (an existing policy is left alone), and the unit is disabled afterwards.
  policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_ tee "$policy" >/dev/null && $sudo_ chmod +x "$policy" && made_policy=1
  fi
  $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ((made_policy)) && $sudo_ rm -f "$policy"
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    $sudo_ systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

scripts/provision-llama.sh

# Black-box test clients (openai SDK, playwright-core, MCP SDK), exact versions from the lockfile.
if [[ -f tests/e2e/package-lock.json ]]; then
  stamp=tests/e2e/node_modules/.lock-stamp
  if [[ ! -f $stamp ]] || ! cmp -s tests/e2e/package-lock.json "$stamp"; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/e2e/package-lock.json "$stamp"
  fi
fi
# The web UI's build tools (esbuild, preact, htm, uPlot), exact versions from the
# lockfile: the router builds without them (router/src/api/web_assets.c is
# committed); the web_assets_current test uses them to check that file is current.
if [[ -f web/package-lock.json ]]; then
  stamp=web/node_modules/.lock-stamp
  if [[ ! -f $stamp ]] || ! cmp -s web/package-lock.json "$stamp"; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    cp web/package-lock.json "$stamp"
  fi
fi
echo "install-deps: ok"
