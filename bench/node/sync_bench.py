#!/usr/bin/env python3
"""Node model sync (issue 15): a model registered on llm-router reaching an
llm-node that pulls it by itself, against a plain `curl` of the same blob
plus `sha256sum`.

The model is mkgguf's `bench` preset (336M parameters, ~360 MB in q8_0;
cached under BUILD/models like the e2e harness's makeModel). The router's
LLM_ROUTER_MODELS_DIR gets a hard link to it; the page cache holds it after
a first read, so every figure is loopback transfer, hashing and the node's
disk writes.

Per run (the steps take turns within each run):
  curl      `curl -sS --fail -H 'X-Node-Token: ...' -o FILE BLOB_URL`, then
            `sha256sum FILE`, into the node's file system (the same tmp
            directory), timed together; the digest is compared with the
            catalogue's.
  sync      a fresh llm-node (empty LLM_NODE_MODELS_DIR, shared-path mode
            off so it downloads, periodic sync off, heartbeat 1 s) is
            registered and idle; then the model is registered on the router
            (POST /api/models/discover-gguf; t0 when it returns) and the
            clock stops when GET /api/nodes lists the model among the node's
            available models (polled every 20 ms): the heartbeat that
            carries the new models_version, /v1/models, the blob download
            with its streaming SHA-256, fsync, rename, rescan and the next
            heartbeat. The node's own "downloaded and verified in N ms" log
            line is the transfer alone (reported beside it).
  Then the model is deleted on the router (the node removes its copy).
The router runs with one worker on core 0; curl and the node on core 1.
Figures are medians of --runs runs (spread min-max beside them); ratios are
the time over curl + sha256sum's (lower is better). One markdown table.

  bench/node/sync_bench.py [--build build-bench] [--runs 3]
Needs curl and coreutils' sha256sum.
"""
import argparse, hashlib, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "router"))
from run import Proc, free_port, wait_port, med  # noqa: E402

ADMIN_PW = "bench-admin-password"
JOIN = "jt_bench_join_token_0123456789"


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


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def fmt(xs, d=2):
    m = med(xs)
    return f"{m:.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})" if len(xs) > 1 else f"{m:.{d}f}"


class Router:
    def __init__(self, build, tmp, models):
        self.port = free_port()
        env = {"LLM_ROUTER_HOST": "127.0.0.1", "LLM_ROUTER_PORT": str(self.port), "LLM_ROUTER_WORKERS": "1",
               "LLM_ROUTER_DATA_DIR": os.path.join(tmp, "router"), "LLM_ROUTER_MODELS_DIR": models,
               "LLM_ROUTER_ADMIN_PASSWORD": ADMIN_PW, "LLM_ROUTER_JOIN_TOKEN": JOIN,
               "LLM_ROUTER_REGISTER_RATE_PER_MIN": "100000", "LLM_ROUTER_LOG_LEVEL": "warn",
               "LLM_ROUTER_HISTORY": "0"}
        self.p = Proc([os.path.join(build, "router", "llm-router")], env=env, core=0,
                      log=os.path.join(tmp, "router.log"))
        wait_port(self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        tok = http_json("POST", f"{self.base}/api/auth/login", {"username": "admin", "password": ADMIN_PW})["token"]
        self.admin = {"authorization": f"Bearer {tok}"}
        # a node token for curl: a registration like a node's
        node = http_json("POST", f"{self.base}/api/nodes", {
            "machine_name": "bench-curl", "ip_address": "127.0.0.1", "runtime_version": "bench", "runtime_port": 1,
            "node_api_port": 1, "gpu_available": False, "gpu_devices": [], "available_models": [],
            "total_slots": 1}, {"x-join-token": JOIN})
        self.node_token = node["node_token"]

    def register(self):
        http_json("POST", f"{self.base}/api/models/discover-gguf", {}, self.admin)
        reg = http_json("GET", f"{self.base}/api/models/registered", None, self.admin)
        return reg if isinstance(reg, list) else reg.get("data") or reg.get("models") or []

    def delete(self, mid):
        req = urllib.request.Request(f"{self.base}/api/models/{mid}", method="DELETE", headers=self.admin)
        urllib.request.urlopen(req, timeout=60).read()

    def nodes(self):
        return http_json("GET", f"{self.base}/api/nodes", None, self.admin)


def run_curl(router, mid, sha, dst):
    url = f"{router.base}/api/models/blob/{mid}"
    t0 = time.perf_counter()
    subprocess.run(["taskset", "-c", "1", "curl", "-sS", "--fail", "-H", f"X-Node-Token: {router.node_token}",
                    "-o", dst, url], check=True)
    out = subprocess.run(["taskset", "-c", "1", "sha256sum", dst], check=True, capture_output=True, text=True).stdout
    t = time.perf_counter() - t0
    if out.split()[0] != sha:
        raise RuntimeError(f"curl: SHA-256 {out.split()[0]} != {sha}")
    os.unlink(dst)
    return t


def run_sync(build, tmp, router, src, models_dir, k):
    ndir = os.path.join(tmp, f"node-{k}")
    os.makedirs(ndir)
    log = os.path.join(tmp, f"node-{k}.log")
    env = {"LLM_ROUTER_URL": router.base, "LLM_ROUTER_JOIN_TOKEN": JOIN, "LLM_NODE_MODELS_DIR": ndir,
           "LLM_NODE_BIND_ADDRESS": "127.0.0.1", "LLM_NODE_PORT": "0", "LLM_NODE_IP": "127.0.0.1",
           "LLM_NODE_API_KEY": "nk_bench_node_key_0123456789", "LLM_NODE_HEARTBEAT_SECS": "1",
           "LLM_NODE_MODEL_SYNC_SECS": "0", "LLM_NODE_MODEL_SYNC_SHARED": "0", "LLM_NODE_LOG_LEVEL": "info",
           "LLM_NODE_LOG_DIR": os.path.join(tmp, f"nodelog-{k}")}
    node = Proc([os.path.join(build, "node", "llm-node")], env=env, core=1, log=log)
    try:
        nid = None
        for _ in range(3000):  # 60 s at most
            m = re.search(r"registered with \S+ as node (\S+)", open(log).read())
            if m:
                nid = m.group(1)
                break
            time.sleep(0.02)
        if not nid:
            raise RuntimeError("the node did not register:\n" + open(log).read())
        time.sleep(1.5)  # idle: a few heartbeats with nothing to sync
        place(src, os.path.join(models_dir, "syncbench.Q8_0.gguf"))
        t0 = time.perf_counter()
        mid = next(x["id"] for x in router.register() if x.get("source") is None)
        t_reg = time.perf_counter()
        for _ in range(30000):  # 600 s at most
            n = next((x for x in router.nodes() if x["id"] == nid), None)
            if n and mid in n.get("available_models", []):
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("the node never advertised the model")
        t = time.perf_counter() - t_reg
        text = open(log).read()
        m = re.search(r"downloaded and verified in (\d+) ms", text)
        if not m:
            raise RuntimeError("no download in the node's log:\n" + text[-3000:])
        got = sha256_file(os.path.join(ndir, mid, "syncbench.Q8_0.gguf"))
        router.delete(mid)
        return t, int(m.group(1)) / 1000.0, t_reg - t0, got, mid
    finally:
        node.stop()
        shutil.rmtree(ndir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--type", default="q8_0")
    a = ap.parse_args()
    src = make_model(a.build, a.preset, a.type)
    size = os.path.getsize(src)
    sha = sha256_file(src)  # also warms the page cache
    tmp = tempfile.mkdtemp(prefix="llmr-syncbench-")
    models_dir = os.path.join(tmp, "router-models")
    os.makedirs(models_dir)
    router = Router(a.build, tmp, models_dir)
    curl_t, sync_t, xfer_t, reg_t = [], [], [], []
    try:
        for k in range(a.runs):
            t, xfer, treg, got, mid = run_sync(a.build, tmp, router, src, models_dir, k)
            if got != sha:
                raise RuntimeError(f"sync: SHA-256 {got} != {sha}")
            sync_t.append(t)
            xfer_t.append(xfer)
            reg_t.append(treg)
            # the same blob by curl, the model registered again under that id
            place(src, os.path.join(models_dir, "syncbench.Q8_0.gguf"))
            mid = next(x["id"] for x in router.register() if x.get("source") is None)
            curl_t.append(run_curl(router, mid, sha, os.path.join(tmp, "curl.gguf")))
            router.delete(mid)
            print(f"run {k + 1}: curl+sha256sum {curl_t[-1]:.2f} s, sync {t:.2f} s (transfer {xfer:.2f} s)",
                  file=sys.stderr)
    finally:
        router.p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    c = med(curl_t)
    mb = size / 1e6
    print(f"\nModel: mkgguf `{a.preset}` {a.type}, {size} bytes; medians of {a.runs} runs (min-max); "
          f"registration (discover-gguf, hashing on the router) took {fmt(reg_t)} s and is not counted.\n")
    print("| path | seconds | MB/s | ratio to curl + sha256sum |")
    print("|---|---|---|---|")
    print(f"| `curl` blob + `sha256sum` | {fmt(curl_t)} | {mb / c:.0f} | 1.00 |")
    print(f"| llm-node sync: download + streaming SHA-256 + fsync + rename (node log) | {fmt(xfer_t)} | "
          f"{mb / med(xfer_t):.0f} | {med(xfer_t) / c:.2f} |")
    print(f"| llm-node sync end to end: registered -> listed ready in /api/nodes (heartbeat 1 s) | {fmt(sync_t)} | "
          f"{mb / med(sync_t):.0f} | {med(sync_t) / c:.2f} |")


if __name__ == "__main__":
    main()
