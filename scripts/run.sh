#!/usr/bin/env bash
# The run command: installs what is needed, builds, and starts the system on
# its embedded defaults (router + one node + a generated demo model, SQLite):
# the model is registered on the router and the node pulls it from there
# (model sync). Then prints the dashboard and playground URLs, where the admin
# password is, a working curl and the MCP server's configuration.
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
# the router's catalogue holds the demo model; the node keeps what it syncs
# from the router in its own directory
router_models=${LLM_ROUTER_MODELS_DIR:-$data/models}
models=${LLM_NODE_MODELS_DIR:-$data/node-models}
mkdir -p "$router_models" "$models"
if [[ ! -f $router_models/demo.gguf ]]; then
  echo "run.sh: generating the demo model (random weights) in $router_models/demo.gguf"
  build/tools/mkgguf --preset demo --type q8_0 -o "$router_models/demo.gguf"
fi

wait_http() { # url, seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

LLM_ROUTER_DATA_DIR=$data LLM_ROUTER_PORT=$port LLM_ROUTER_MODELS_DIR=$router_models \
  nohup build/router/llm-router >"$run/router.out" 2>&1 &
echo $! >"$run/router.pid"
wait_http "http://127.0.0.1:$port/health" 30 || { cat "$run/router.out"; echo "run.sh: router did not start"; exit 1; }

# register the demo model in the catalogue (idempotent: a registered file is skipped)
admin_pw=${LLM_ROUTER_ADMIN_PASSWORD:-$(cat "$data/admin_password" 2>/dev/null || true)}
token=$(curl -fs "http://127.0.0.1:$port/api/auth/login" -H 'Content-Type: application/json' \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"username":"admin","password":sys.argv[1]}))' "$admin_pw")" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null || true)
if [[ -n $token ]]; then
  curl -fs -X POST "http://127.0.0.1:$port/api/models/discover-gguf" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{}' >/dev/null || echo "run.sh: could not register the demo model"
else
  echo "run.sh: could not sign in as admin (set LLM_ROUTER_ADMIN_PASSWORD): the demo model is not registered"
fi

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

# the node registers, syncs the model from the router (in place: same
# machine) and heartbeats; wait until the router routes it
for _ in $(seq 1 150); do
  curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/models" | grep -q '"demo"' && break
  sleep 0.2
done

mcp_json=$data/mcp.json
# the admin password file exists when the router generated the password;
# with LLM_ROUTER_ADMIN_PASSWORD set, add LLM_ROUTER_PASSWORD to the env yourself
pw_line=""
[[ -f $data/admin_password ]] && pw_line=",
        \"LLM_ROUTER_PASSWORD_FILE\": \"$data/admin_password\""
cat >"$mcp_json" <<JSON
{
  "mcpServers": {
    "llm-router": {
      "type": "stdio",
      "command": "$root/build/mcp/llm-router-mcp",
      "env": {
        "LLM_ROUTER_URL": "http://127.0.0.1:$port",
        "LLM_ROUTER_API_KEY_FILE": "$key_file",
        "LLM_ROUTER_USERNAME": "admin"$pw_line
      }
    }
  }
}
JSON
chmod 600 "$mcp_json"

cat <<MSG

llm-router is running (router pid $(cat "$run/router.pid"), node pid $(cat "$run/node.pid")).
  API:             http://127.0.0.1:$port/v1   (OpenAI-compatible)
  Dashboard:       http://127.0.0.1:$port/dashboard
  Playground:      http://127.0.0.1:$port/playground
  Admin login:     user admin, password in $( [[ -f $data/admin_password ]] && echo "$data/admin_password" || echo "the LLM_ROUTER_ADMIN_PASSWORD you set" )
  API key (demo):  $key_file
  Model:           "demo", registered on the router ($router_models), synced by the node
  MCP server:      $mcp_json   (copy into your assistant's .mcp.json)
  Logs:            $run/router.out, $run/node.out, $data/logs/
  Stop:            scripts/run.sh stop

Try it:
  curl http://127.0.0.1:$port/v1/chat/completions \\
    -H "Authorization: Bearer \$(cat $key_file)" -H "Content-Type: application/json" \\
    -d '{"model":"demo","messages":[{"role":"user","content":"Hello!"}],"max_tokens":16}'

(The demo model has random weights: it answers with noise, but every part of the path is real.)
MSG
