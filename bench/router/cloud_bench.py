#!/usr/bin/env python3
"""CPU cost of the cloud prefixes (issue 16): llm-router's `openai:`
passthrough against its `anthropic:` and `google:` translation, and Portkey
1.15.2 translating the same Anthropic stream.

A fake provider (cloud_fake.py: HTTP, pre-rendered streams) answers every
chat request with N text events. The client sends R streamed chat requests
(OpenAI body, keep-alive, C at a time) through each proxy and the proxy's
CPU (the run time of every thread of its process tree from
/proc/*/task/*/schedstat, not wall time: the fake and the client share the
machine) is read before and after. Two sizes
separate the fixed and the per-event cost:

  per request = cpu(N1) / R        per event = (cpu(N2) - cpu(N1)) / (R * (N2 - N1))

Every figure is the median of --runs runs with the spread (min-max) beside
it. The proxy runs pinned to core 0, the fake and the client to core 1.

  bench/router/cloud_bench.py [--build build-bench] [--runs 5] [--requests 300]
Needs bench/router/portkey/node_modules (run.sh installs it: npm ci).
"""
import argparse, http.client, json, os, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Proc, free_port, wait_port, tree, med, start_portkey  # noqa: E402


def cpu_seconds(pid):
    """CPU time of pid's process tree, in seconds with nanosecond resolution:
    the sum of every thread's run time from /proc/T/task/*/schedstat (utime
    and stime in /proc/T/stat count 10 ms ticks, too coarse for a proxy that
    spends tens of microseconds per request). Threads that exit take their
    time with them; the proxies measured here keep theirs."""
    total = 0
    for p in tree(pid):
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                try:
                    total += int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
                except OSError:
                    pass
        except OSError:
            pass
    return total / 1e9

KEYS = {"OPENAI_API_KEY": "sk-bench-openai", "ANTHROPIC_API_KEY": "sk-ant-bench", "GOOGLE_API_KEY": "bench-google"}


def start_router(build, tmp, port, up):
    data = os.path.join(tmp, f"router-{port}")
    env = {"LLM_ROUTER_HOST": "127.0.0.1", "LLM_ROUTER_PORT": str(port), "LLM_ROUTER_WORKERS": "1",
           "LLM_ROUTER_DATA_DIR": data, "LLM_ROUTER_ADMIN_PASSWORD": "bench-admin-password",
           "LLM_ROUTER_LOG_LEVEL": "warn", "LLM_ROUTER_HISTORY": "0", "LLM_ROUTER_CLOUD_RETRIES": "0",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{up}", "ANTHROPIC_API_BASE_URL": f"http://127.0.0.1:{up}",
           "GOOGLE_API_BASE_URL": f"http://127.0.0.1:{up}/v1beta", **KEYS}
    key = subprocess.run([os.path.join(build, "router", "llm-router"), "apikey", "create", "bench"],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.strip()
    p = Proc([os.path.join(build, "router", "llm-router")], env=env, core=0, log=os.path.join(tmp, "router.log"))
    wait_port(port)
    return p, key


def targets(router_key, up):
    r = {"authorization": f"Bearer {router_key}"}
    pk = {"authorization": "Bearer sk-bench", "x-portkey-custom-host": f"http://127.0.0.1:{up}/v1"}
    return {
        "llm-router openai: (passthrough)": ("router", "openai:bench-{n}", r),
        "llm-router anthropic:": ("router", "anthropic:bench-{n}", r),
        "llm-router google:": ("router", "google:bench-{n}", r),
        "portkey anthropic": ("portkey", "bench-{n}", {**pk, "x-portkey-provider": "anthropic"}),
        "portkey openai (passthrough)": ("portkey", "bench-{n}", {**pk, "x-portkey-provider": "openai"}),
    }


def one_stream(conn, headers, model):
    body = json.dumps({"model": model, "stream": True, "max_tokens": 100000,
                       "messages": [{"role": "user", "content": "hi"}]})
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json", **headers})
    res = conn.getresponse()
    data = res.read()
    if res.status != 200:
        raise RuntimeError(f"{model}: {res.status} {data[:300]!r}")
    return data


def check(port, headers, model, n):
    """The stream is a real translation: n text deltas and [DONE]."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = one_stream(c, headers, model).decode()
    c.close()
    texts = 0
    for line in data.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            ch = json.loads(line[6:])
            for choice in ch.get("choices") or []:
                if (choice.get("delta") or {}).get("content", "").startswith(" w"):
                    texts += 1
    if texts != n or "data: [DONE]" not in data:
        raise RuntimeError(f"{model}: {texts} text deltas of {n}, [DONE] {'data: [DONE]' in data}: {data[:400]}")


def load(port, headers, model, total, conc):
    errors = []

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for _ in range(k):
                one_stream(c, headers, model)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()
    per = [total // conc + (1 if i < total % conc else 0) for i in range(conc)]
    ts = [threading.Thread(target=worker, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def measure(pid, port, headers, model, total, conc):
    load(port, headers, model, max(total // 10, 5), conc)  # warm: connections, caches
    a = cpu_seconds(pid)
    load(port, headers, model, total, conc)
    return cpu_seconds(pid) - a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build-bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--conc", type=int, default=4)
    ap.add_argument("--n1", type=int, default=1)
    ap.add_argument("--n2", type=int, default=200)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cloud-bench-")
    up = free_port()
    fake = Proc(["taskset", "-c", "1", sys.executable, os.path.join(HERE, "cloud_fake.py"), str(up)],
                log=os.path.join(tmp, "fake.log"))
    procs = [fake]
    try:
        wait_port(up)
        rport, pport = free_port(), free_port()
        router, key = start_router(args.build, tmp, rport, up)
        procs.append(router)
        portkey = start_portkey(tmp, pport, up)
        procs.append(portkey)
        wait_port(pport, 60)
        where = {"router": (router.pid, rport), "portkey": (portkey.pid, pport)}
        os.sched_setaffinity(0, {1})
        rows = {}
        for name, (who, model, headers) in targets(key, up).items():
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            pid, port = where[who]
            try:
                check(port, headers, model.format(n=args.n2), args.n2)
            except Exception as e:  # noqa: BLE001
                print(f"{name}: skipped: {e}", file=sys.stderr)
                continue
            req, ev = [], []
            for _ in range(args.runs):
                c1 = measure(pid, port, headers, model.format(n=args.n1), args.requests, args.conc)
                c2 = measure(pid, port, headers, model.format(n=args.n2), args.requests, args.conc)
                req.append(c1 / args.requests * 1e6)
                ev.append(max(c2 - c1, 0) / (args.requests * (args.n2 - args.n1)) * 1e6)
            rows[name] = (req, ev)
            print(f"{name}: per request {med(req):.0f} us, per event {med(ev):.2f} us", file=sys.stderr)
        print_table(rows, args)
    finally:
        for p in reversed(procs):
            p.stop()


def fmt(xs, d):
    return f"{med(xs):.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})"


def print_table(rows, args):
    base = rows.get("llm-router openai: (passthrough)")
    pk = rows.get("portkey anthropic")
    print(f"\nCPU of the proxy, medians of {args.runs} runs (min-max); {args.requests} streamed requests "
          f"per run, {args.conc} at a time; events per stream {args.n1} and {args.n2}\n")
    print("| proxy / route | CPU us per request | CPU us per event | per event vs passthrough | per request vs Portkey anthropic | per event vs Portkey anthropic |")
    print("|---|---|---|---|---|---|")
    for name, (req, ev) in rows.items():
        vs_base = f"{med(ev) / med(base[1]):.2f}x" if base and med(base[1]) > 0 else "-"
        vs_pk_r = f"{med(pk[0]) / med(req):.1f}x less" if pk and med(req) > 0 else "-"
        vs_pk_e = f"{med(pk[1]) / med(ev):.1f}x less" if pk and med(ev) > 0 else "-"
        print(f"| {name} | {fmt(req, 0)} | {fmt(ev, 2)} | {vs_base} | {vs_pk_r} | {vs_pk_e} |")


if __name__ == "__main__":
    main()
