#!/usr/bin/env bash
# The run command: installs what is needed, builds, and starts the system on
# its embedded defaults (router + one node + a generated demo model, SQLite),
# then prints the dashboard URL, where the admin password is and a working curl.
#   scripts/run.sh          start (router :8080, node :11435) in the background
#   scripts/run.sh stop     stop what a previous run started
# Settings: every LLM_ROUTER_* / LLM_NODE_* variable of the README applies.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data=${LLM_ROUTER_DATA_DIR:-$HOME/.llm-router}
run=$data/run
mkdir -p "$run"

stop() {
  for p in node router; do
    if [[ -f $run/$p.pid ]] && kill -0 "$(cat "$run/$p.pid")" 2>/dev/null; then
      pid=$(cat "$run/$p.pid")
      kill "$pid" && echo "stopped llm-$p"
      # gone before a new one starts: the router holds its data directory and port
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$run/$p.pid"
  done
}
if [[ ${1:-} == stop ]]; then stop; exit 0; fi
stop >/dev/null 2>&1 || true

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" -- --no-print-directory >/dev/null

port=${LLM_ROUTER_PORT:-8080}
node_port=${LLM_NODE_PORT:-11435}
models=${LLM_NODE_MODELS_DIR:-$data/models}
mkdir -p "$models"
if [[ ! -f $models/demo.gguf ]]; then
  echo "run.sh: generating the demo model (random weights) in $models/demo.gguf"
  build/tools/mkgguf --preset demo --type q8_0 -o "$models/demo.gguf"
fi

wait_http() { # url, seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

LLM_ROUTER_DATA_DIR=$data LLM_ROUTER_PORT=$port nohup build/router/llm-router >"$run/router.out" 2>&1 &
echo $! >"$run/router.pid"
wait_http "http://127.0.0.1:$port/health" 30 || { cat "$run/router.out"; echo "run.sh: router did not start"; exit 1; }

join=$(cat "$data/join_token" 2>/dev/null || true)
LLM_ROUTER_URL=http://127.0.0.1:$port LLM_ROUTER_JOIN_TOKEN=$join LLM_NODE_PORT=$node_port \
  LLM_NODE_MODELS_DIR=$models LLM_NODE_LOG_DIR=$data/logs \
  nohup build/node/llm-node >"$run/node.out" 2>&1 &
echo $! >"$run/node.pid"
wait_http "http://127.0.0.1:$node_port/health" 60 || { cat "$run/node.out"; echo "run.sh: node did not start"; exit 1; }

key_file=$data/demo_api_key
if [[ ! -s $key_file ]]; then
  LLM_ROUTER_DATA_DIR=$data build/router/llm-router apikey create demo 2>/dev/null >"$key_file"
  chmod 600 "$key_file"
fi
key=$(cat "$key_file")

# the node registers and heartbeats; wait until the router routes the model
for _ in $(seq 1 100); do
  curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/models" | grep -q '"demo"' && break
  sleep 0.2
done

cat <<MSG

llm-router is running (router pid $(cat "$run/router.pid"), node pid $(cat "$run/node.pid")).
  API:             http://127.0.0.1:$port/v1   (OpenAI-compatible)
  Dashboard:       http://127.0.0.1:$port/dashboard   (the web UI is not built yet: manage with the
                   /api/* endpoints after POST /api/auth/login, or with \`llm-router user|apikey\`)
  Admin login:     user admin, password in $( [[ -f $data/admin_password ]] && echo "$data/admin_password" || echo "the LLM_ROUTER_ADMIN_PASSWORD you set" )
  API key (demo):  $key_file
  Logs:            $run/router.out, $run/node.out, $data/logs/
  Stop:            scripts/run.sh stop

Try it:
  curl http://127.0.0.1:$port/v1/chat/completions \\
    -H "Authorization: Bearer \$(cat $key_file)" -H "Content-Type: application/json" \\
    -d '{"model":"demo","messages":[{"role":"user","content":"Hello!"}],"max_tokens":16}'

(The demo model has random weights: it answers with noise, but every part of the path is real.)
MSG
