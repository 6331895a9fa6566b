#!/usr/bin/env python3
"""Blob serving (issue 15): llm-router's GET /api/models/blob/:model_name
against nginx serving the same file (`sendfile on`) on loopback.

A GGUF made by mkgguf (the `bench` preset, ~360 MB in q8_0; cached under
BUILD/models like the e2e harness's makeModel) is placed in a temporary
LLM_ROUTER_MODELS_DIR and registered with POST /api/models/discover-gguf;
nginx's root is that directory. The file is read once first (page cache),
and the SHA-256 of what each server sends is checked against the
catalogue's before anything is timed.

Loads: one client pulling the file ROUNDS times on one kept-alive
connection, and 16 clients at once each pulling it ROUNDS16 times, all with
curl (-o /dev/null, a node token for the router). Reported per server:
MB/s (10^6 bytes of body per wall second, every byte of every pull) and
CPU seconds per GB (the server's process tree's run time from
/proc/*/task/*/schedstat, cloud_bench.cpu_seconds: the kernel's sendfile
work counts, it runs in the server's threads). Each server runs with one
worker (LLM_ROUTER_WORKERS=1, worker_processes 1) pinned to core 0, the
clients on core 1; within each run the servers take turns. Figures are
medians of --runs runs with the spread (min-max) beside them, ratios are
llm-router / nginx (MB/s: higher is better; CPU/GB: lower is better).

  bench/router/blob_bench.py [--build build-bench] [--runs 5] [--file X.gguf]
Needs nginx (Debian's nginx-light: scripts/install-deps.sh --bench) and curl.
"""
import argparse, hashlib, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Proc, free_port, wait_port, med  # noqa: E402
from cloud_bench import cpu_seconds  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ADMIN_PW = "bench-admin-password"


def http_json(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def make_model(build, preset, qtype):
    d = os.path.join(build, "models")
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, f"{preset}-{qtype}.gguf")
    if not os.path.exists(f):
        tmp = f"{f}.tmp{os.getpid()}"
        subprocess.run([os.path.join(build, "tools", "mkgguf"), "--preset", preset, "--type", qtype, "-o", tmp],
                       check=True, capture_output=True)
        os.rename(tmp, f)
    return f


def place(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def start_router(build, tmp, port, models):
    env = {"LLM_ROUTER_HOST": "127.0.0.1", "LLM_ROUTER_PORT": str(port), "LLM_ROUTER_WORKERS": "1",
           "LLM_ROUTER_DATA_DIR": os.path.join(tmp, "router"), "LLM_ROUTER_MODELS_DIR": models,
           "LLM_ROUTER_ADMIN_PASSWORD": ADMIN_PW, "LLM_ROUTER_OPEN_REGISTRATION": "1",
           "LLM_ROUTER_NODE_TIMEOUT": "3600", "LLM_ROUTER_LOG_LEVEL": "warn", "LLM_ROUTER_HISTORY": "0"}
    p = Proc([os.path.join(build, "router", "llm-router")], env=env, core=0, log=os.path.join(tmp, "router.log"))
    wait_port(port)
    base = f"http://127.0.0.1:{port}"
    tok = http_json("POST", f"{base}/api/auth/login", {"username": "admin", "password": ADMIN_PW})["token"]
    admin = {"authorization": f"Bearer {tok}"}
    http_json("POST", f"{base}/api/models/discover-gguf", {}, admin)
    reg = http_json("GET", f"{base}/api/models/registered", None, admin)
    models_list = reg if isinstance(reg, list) else reg.get("data") or reg.get("models") or []
    node = http_json("POST", f"{base}/api/nodes", {
        "machine_name": "bench", "ip_address": "127.0.0.1", "runtime_version": "bench", "runtime_port": 1,
        "node_api_port": 1, "gpu_available": False, "gpu_devices": [], "available_models": [], "total_slots": 1})
    p.base, p.models, p.node_token = base, models_list, node["node_token"]
    return p


def start_nginx(tmp, port, root):
    conf = os.path.join(tmp, "nginx-blob.conf")
    open(conf, "w").write(f"""
worker_processes 1; daemon off; pid {tmp}/nginx-blob.pid; error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
  uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
  server {{ listen 127.0.0.1:{port} backlog=4096; root {root}; }}
}}""")
    p = Proc(["nginx", "-c", conf, "-p", tmp], core=0, log=os.path.join(tmp, "nginx.log"))
    wait_port(port)
    return p


def pulls(url, headers, clients, rounds):
    """clients curl processes (core 1) each pulling url rounds times on one
    connection; returns (bytes, seconds)."""
    argv = ["taskset", "-c", "1", "curl", "-sS", "--fail", "-w", "%{size_download}\\n"]
    for h in headers:
        argv += ["-H", h]
    for _ in range(rounds):
        argv += ["-o", "/dev/null", url]
    t0 = time.perf_counter()
    ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(clients)]
    total = 0
    for p in ps:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"curl {url}: rc {p.returncode}: {err.strip()}")
        total += sum(int(x) for x in out.split())
    return total, time.perf_counter() - t0


def digest_of(url, headers):
    req = urllib.request.Request(url, headers=dict(h.split(": ", 1) for h in headers))
    h = hashlib.sha256()
    with urllib.request.urlopen(req, timeout=600) as r:
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def fmt(xs, d=0):
    m = med(xs)
    return f"{m:.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})" if len(xs) > 1 else f"{m:.{d}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", help="a GGUF to serve (default: mkgguf --preset bench --type q8_0)")
    ap.add_argument("--rounds", type=int, default=8, help="pulls of the one client per run")
    ap.add_argument("--rounds16", type=int, default=1, help="pulls of each of the 16 clients per run")
    args = ap.parse_args()
    if not shutil.which("nginx") or not shutil.which("curl"):
        sys.exit("needs nginx and curl (scripts/install-deps.sh --bench)")
    src = args.file or make_model(args.build, "bench", "q8_0")
    tmp = tempfile.mkdtemp(prefix="llmr-blob-bench-")
    os.chmod(tmp, 0o755)  # nginx's worker (www-data when started as root) reads the file too
    models = os.path.join(tmp, "models")
    os.makedirs(models)
    name = "bench.Q8_0.gguf"
    place(src, os.path.join(models, name))
    size = os.path.getsize(os.path.join(models, name))
    procs = []
    try:
        rport, nport = free_port(), free_port()
        router = start_router(args.build, tmp, rport, models)
        procs.append(router)
        nginx = start_nginx(tmp, nport, models)
        procs.append(nginx)
        m = next((x for x in router.models if x.get("size") == size), None)
        if not m:
            raise RuntimeError(f"the file was not registered: {router.models}")
        targets = {
            "llm-router": (router.pid, f"{router.base}/api/models/blob/{m['id']}", [f"X-Node-Token: {router.node_token}"]),
            "nginx": (nginx.pid, f"http://127.0.0.1:{nport}/{name}", []),
        }
        for t, (_, url, hdrs) in targets.items():  # correctness first (and the page cache warm)
            got = digest_of(url, hdrs)
            if got != m["sha256"]:
                raise RuntimeError(f"{t}: SHA-256 {got} is not the catalogue's {m['sha256']}")
        loads = [("1 client", 1, args.rounds), ("16 clients", 16, args.rounds16)]
        res = {(t, l[0]): {"mbs": [], "cpu": []} for t in targets for l in loads}
        for run in range(args.runs):
            for label, clients, rounds in loads:
                for t, (pid, url, hdrs) in targets.items():
                    c0 = cpu_seconds(pid)
                    n, secs = pulls(url, hdrs, clients, rounds)
                    cpu = cpu_seconds(pid) - c0
                    if n != clients * rounds * size:
                        raise RuntimeError(f"{t} {label}: {n} bytes, want {clients * rounds * size}")
                    res[(t, label)]["mbs"].append(n / secs / 1e6)
                    res[(t, label)]["cpu"].append(cpu / (n / 1e9))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
        print(f"\nBlob serving, {size / 1e6:.0f} MB GGUF from the page cache, loopback; one worker each on core 0, "
              f"curl on core 1; medians of {args.runs} runs (spread min-max); 1 client: {args.rounds} pulls on one "
              f"connection, 16 clients: {args.rounds16} pull(s) each, at once.\n")
        print("| load | metric | llm-router | nginx (sendfile on) | ratio llm-router/nginx |")
        print("|---|---|---|---|---|")
        for label, _, _ in loads:
            r, n = res[("llm-router", label)], res[("nginx", label)]
            print(f"| {label} | MB/s | {fmt(r['mbs'])} | {fmt(n['mbs'])} | {med(r['mbs']) / med(n['mbs']):.2f} |")
            print(f"| {label} | CPU s per GB | {fmt(r['cpu'], 3)} | {fmt(n['cpu'], 3)} | "
                  f"{med(r['cpu']) / med(n['cpu']):.2f} |")
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
