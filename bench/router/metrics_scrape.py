#!/usr/bin/env python3
"""GET /metrics latency with many nodes registered (target: p95 under 5 ms).

Starts the C mock node and llm-router from a build directory, registers N
fake nodes with the join token (each its own machine name, all answered by
the one mock node) and heartbeats them, sends traffic over M models, plain
and streamed, so that llm_router_requests_total holds a series per (model,
node, stream) seen, then times S scrapes of /metrics with an API key over
one keep-alive connection. Prints a markdown table.

  python3 bench/router/metrics_scrape.py [--build build-bench] [--nodes 100] [--models 5]
                                         [--requests 2000] [--scrapes 200]
"""
import argparse, http.client, json, os, statistics, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

JOIN = "jt_bench_join_token_0123456789"


def post(port, path, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def heartbeat(port, node, models):
    return post(port, "/api/health", {
        "node_id": node["node_id"], "cpu_usage": 12.5, "memory_usage": 40, "gpu_usage": 30, "gpu_memory_usage": 50,
        "active_requests": 0, "queued_requests": 0, "total_slots": 64, "loaded_models": models,
        "available_models": models, "initializing": False, "ready_models": [len(models), len(models)]},
        {"X-Node-Token": node["node_token"]})[0]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(R.ROOT, "build-bench"))
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="llmr-scrape-")
    up = R.free_port()
    mock = R.Proc([os.path.join(build, "bench", "mock_node")], env={"MOCK_PORT": str(up), "MOCK_CHUNKS": "5"},
                  log=os.path.join(tmp, "mock.log"))
    R.wait_port(up)
    port = R.free_port()
    env = {"LLM_ROUTER_HOST": "127.0.0.1", "LLM_ROUTER_PORT": str(port), "LLM_ROUTER_WORKERS": "2",
           "LLM_ROUTER_DATA_DIR": os.path.join(tmp, "router"), "LLM_ROUTER_ADMIN_PASSWORD": "bench-admin-password",
           "LLM_ROUTER_JOIN_TOKEN": JOIN, "LLM_ROUTER_REGISTER_RATE_PER_MIN": "100000",
           "LLM_ROUTER_LOG_LEVEL": "warn"}
    binary = os.path.join(build, "router", "llm-router")
    key = R.subprocess.run([binary, "apikey", "create", "bench"], env={**os.environ, **env}, capture_output=True,
                           text=True, check=True).stdout.strip()
    router = R.Proc([binary], env=env, log=os.path.join(tmp, "router.log"))
    stop = threading.Event()
    try:
        R.wait_port(port)
        models = [f"model-{i}" for i in range(args.models)]
        nodes = []
        for i in range(args.nodes):
            st, data = post(port, "/api/nodes", {
                "machine_name": f"bench-node-{i:03d}", "ip_address": "127.0.0.1", "runtime_version": "mock",
                "runtime_port": up, "node_api_port": up, "gpu_available": True,
                "gpu_devices": [{"model": "Fake GPU", "count": 1}], "available_models": models, "total_slots": 64},
                {"X-Join-Token": JOIN})
            if st != 201:
                raise RuntimeError(f"registration {i}: {st} {data[:200]}")
            nodes.append(json.loads(data))
        for n in nodes:
            assert heartbeat(port, n, models) == 200

        def beat():
            while not stop.wait(5):
                for n in nodes:
                    heartbeat(port, n, models)
        threading.Thread(target=beat, daemon=True).start()

        auth = {"Authorization": f"Bearer {key}"}

        def one(i):
            body = {"model": models[i % len(models)], "messages": [{"role": "user", "content": "hi"}],
                    "stream": i % 2 == 1}
            try:
                return post(port, "/v1/chat/completions", body, auth)[0]
            except OSError as e:  # counted, not fatal: the table says how many
                return f"{type(e).__name__}" 
        t0 = time.time()
        with ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(one, range(args.requests)))
        traffic_s = time.time() - t0
        ok = sum(1 for c in codes if c == 200)
        failed = {}
        for c in codes:
            if c != 200:
                failed[c] = failed.get(c, 0) + 1

        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        lat, size = [], 0
        cpu0 = R.cpu_seconds(router.pid)
        for i in range(args.scrapes + 5):
            t = time.perf_counter()
            c.request("GET", "/metrics", headers=auth)
            r = c.getresponse()
            body = r.read()
            dt = (time.perf_counter() - t) * 1000
            if r.status != 200:
                raise RuntimeError(f"/metrics: {r.status} {body[:200]}")
            if i >= 5:  # the first few warm the connection
                lat.append(dt)
            size = len(body)
        cpu_ms = (R.cpu_seconds(router.pid) - cpu0) * 1000 / (args.scrapes + 5)
        text = body.decode()
        series = sum(1 for l in text.split("\n") if l.startswith("llm_router_requests_total{"))
        lines = sum(1 for l in text.split("\n") if l and not l.startswith("#"))
        p50, p95 = pct(lat, 50), pct(lat, 95)
        print(f"\n/metrics with {args.nodes} nodes, {args.models} models, {args.requests} requests "
              f"({ok} answered 200 in {traffic_s:.1f} s{', others: ' + str(failed) if failed else ''}), "
              f"{args.scrapes} scrapes, build {build}\n")
        print("| nodes | request series | samples | body bytes | p50 ms | p95 ms | max ms | router CPU ms/scrape | target p95 |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        print(f"| {args.nodes} | {series} | {lines} | {size} | {p50:.2f} | {p95:.2f} | {max(lat):.2f} | {cpu_ms:.2f} | "
              f"< 5 ms: {'met' if p95 < 5 else 'MISSED'} |")
        print("\n(latency is wall time at the client, body read included; router CPU is the router's user+system "
              "time over the scrapes / their count, from /proc: steadier on a loaded machine)")
    finally:
        stop.set()
        router.stop()
        mock.stop()


if __name__ == "__main__":
    main()
