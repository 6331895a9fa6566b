#!/usr/bin/env python3
"""Proxy benchmark driver: see run.sh. Prints one table with ratios against nginx.

Each proxy runs pinned to core 0; the mock node, wrk and sse_load share core 1.
Figures are medians over REPEATS runs with the spread (min-max) beside them.
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def tree(pid):
    out = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        kids = []
    for k in kids:
        out += tree(int(k))
    return out


def cpu_seconds(pid):
    total = 0
    for p in tree(pid):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / TICK


def reset_peak(pid):
    """Restarts VmHWM at the current RSS (Linux clear_refs 5), so that a peak read
    later is the peak under load, not a start-up transient (llm-router hashes a
    password with a memory-hard function at start: ~64 MB for a moment)."""
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def rss_mb(pid, field="VmRSS"):
    total = 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Proc:
    def __init__(self, argv, env=None, core=None, log=None):
        if core is not None:
            argv = ["taskset", "-c", str(core)] + argv
        self.log = open(log or os.devnull, "w")
        self.p = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=self.log,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(10)
        except Exception:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except Exception:
                pass
        self.log.close()


def pin(pid, core):
    for p in tree(pid):
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(p)], capture_output=True)


def to_us(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v = float(m.group(1))
    return v * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]


def wrk(url, conns, duration, env):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
                          "-s", os.path.join(HERE, "post.lua"), url],
                         capture_output=True, text=True, env={**os.environ, **env}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_us(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_us(re.search(r"\s99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errs.groups())) if errs else 0)
    return dict(rps=rps, p50=p50, p99=p99, total=total, bad=bad)


def sse(build, url, conc, total, env_headers):
    argv = ["taskset", "-c", "1", os.path.join(build, "bench", "sse_load"), url, "-c", str(conc), "-n", str(total)]
    for h in env_headers:
        argv += ["-H", h]
    r = subprocess.run(argv, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def med(xs):
    return statistics.median(xs)


def spread(xs):
    return f"{min(xs):.0f}-{max(xs):.0f}" if len(xs) > 1 else "-"


# ---------------- proxies ----------------

NGINX_KEY = "Bearer sk_bench_nginx_key"


def start_nginx(tmp, port, up, auth=False, log=False):
    """nginx in front of the mock. With auth, the nearest equivalent of the
    router's policy check: a map on the Authorization header and an `if` that
    returns 401 in the rewrite phase, before the body is read (nginx then
    reads and discards the body to keep the connection), and the router's
    16 MiB body limit instead of nginx's 1 MiB default."""
    name = "nginx-auth" if auth else "nginx-log" if log else "nginx"
    conf = os.path.join(tmp, f"{name}.conf")
    amap = (f'map $http_authorization $llmr_denied {{ "{NGINX_KEY}" 0; default 1; }}\n  '
            "client_max_body_size 16m;" if auth else "")
    check = ("if ($llmr_denied) { return 401 '{\"error\":{\"message\":\"Invalid API key\","
             "\"type\":\"authentication_error\",\"param\":null,\"code\":\"invalid_api_key\"}}'; }"
             if auth else "")
    open(conf, "w").write(f"""
worker_processes 1; daemon off; pid {tmp}/{name}.pid; error_log stderr error;
events {{ worker_connections 8192; }}
http {{
  {f"access_log {tmp}/{name}-access.log combined buffer=64k;" if log else "access_log off;"}
  {amap}
  client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
  uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
  upstream up {{ server 127.0.0.1:{up}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    {check}
    location / {{
      proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_read_timeout 120s;
    }}
  }}
}}""")
    return Proc(["nginx", "-c", conf, "-p", tmp], core=0, log=os.path.join(tmp, f"{name}.log"))


def start_haproxy(tmp, port, up):
    conf = os.path.join(tmp, "haproxy.cfg")
    open(conf, "w").write(f"""
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-no-delay
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server s1 127.0.0.1:{up} maxconn 8000
""")
    return Proc(["haproxy", "-db", "-f", conf], core=0, log=os.path.join(tmp, "haproxy.log"))


def start_portkey(tmp, port, up):
    pk = os.path.join(HERE, "portkey")
    return Proc(["node", "--require", os.path.join(pk, "listen-loopback.cjs"),
                 os.path.join(pk, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js"),
                 f"--port={port}", "--headless"], env={"NODE_ENV": "production"}, core=0,
                log=os.path.join(tmp, "portkey.log"))


def http_json(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def start_router(build, tmp, port, up, history=None):
    data = os.path.join(tmp, f"router-{port}")
    env = {"LLM_ROUTER_HOST": "127.0.0.1", "LLM_ROUTER_PORT": str(port), "LLM_ROUTER_WORKERS": "1",
           "LLM_ROUTER_DATA_DIR": data, "LLM_ROUTER_ADMIN_PASSWORD": "bench-admin-password",
           "LLM_ROUTER_OPEN_REGISTRATION": "1", "LLM_ROUTER_NODE_TIMEOUT": "3600",
           "LLM_ROUTER_LOG_LEVEL": "warn", **({"LLM_ROUTER_HISTORY": history} if history is not None else {}),
           **({"LD_PRELOAD": os.environ["BENCH_ROUTER_PRELOAD"]}
                                             if os.environ.get("BENCH_ROUTER_PRELOAD") else {})}
    # the key is made before the router starts, so the bench does not depend on
    # the router noticing keys added by the CLI while it runs
    key = subprocess.run([os.path.join(build, "router", "llm-router"), "apikey", "create", "bench"],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.strip()
    p = Proc([os.path.join(build, "router", "llm-router")], env=env, core=0, log=os.path.join(tmp, "router.log"))
    wait_port(port)
    base = f"http://127.0.0.1:{port}"
    reg = http_json("POST", f"{base}/api/nodes", {
        "machine_name": "mock", "ip_address": "127.0.0.1", "runtime_version": "mock", "runtime_port": up,
        "node_api_port": up, "gpu_available": False, "gpu_devices": [], "available_models": ["mock"],
        "total_slots": 4096})
    http_json("POST", f"{base}/api/health", {
        "node_id": reg["node_id"], "cpu_usage": 1, "memory_usage": 1, "active_requests": 0, "total_slots": 4096,
        "loaded_models": ["mock"], "available_models": ["mock"], "initializing": False, "ready_models": [1, 1]},
        {"X-Node-Token": reg["node_token"]})
    p.auth = f"Bearer {key}"
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("REPEATS", 3)))
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 5)))
    ap.add_argument("--only", default="direct,nginx,nginx-log,haproxy,portkey,llm-router-nohist,llm-router")
    ap.add_argument("--attack", action="store_true",
                    help="also the under-attack row (64 unauthenticated 16 MiB bodies; ~2 min more)")
    ap.add_argument("--attack-only", action="store_true", help="only the under-attack row")
    ap.add_argument("--attack-rate", type=int, default=int(os.environ.get("ATTACK_RATE", 0)),
                    help="bytes/s per attacking connection (0: as fast as the socket takes)")
    args = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="llmr-bench-")
    up = free_port()
    mock = Proc([os.path.join(build, "bench", "mock_node")], env={"MOCK_PORT": str(up), "MOCK_CHUNKS": "20"},
                core=1, log=os.path.join(tmp, "mock.log"))
    wait_port(up)
    rows, attack = {}, None
    try:
        if not args.attack_only:
            rows = run_all(args.only.split(","), build, tmp, up, args, mock)
            if "llm-router" in rows:
                rows["streams_1000"] = hold_streams(build, tmp, args)
        if args.attack or args.attack_only:
            attack = under_attack(build, tmp, up, args)
    finally:
        mock.stop()
    if rows:
        print_table(rows, args)
    if attack:
        print_attack(attack, args)
    shutil.rmtree(tmp, ignore_errors=True)


class Target:
    """One proxy (or the mock itself, "direct") and how to reach it."""

    def __init__(self, name, build, tmp, up):
        self.name, self.proc, self.env, self.headers = name, None, {}, []
        self.port = port = free_port()
        if name == "direct":
            port = up
        elif name == "nginx":
            self.proc = start_nginx(tmp, port, up)
        elif name == "nginx-log":  # nginx with an access log: the anchor of the history rows
            self.proc = start_nginx(tmp, port, up, log=True)
        elif name == "nginx-auth":
            self.proc = start_nginx(tmp, port, up, auth=True)
            self.env = {"BENCH_AUTH": NGINX_KEY}
            self.headers = [f"Authorization: {NGINX_KEY}"]
        elif name == "haproxy":
            self.proc = start_haproxy(tmp, port, up)
        elif name == "portkey":
            self.proc = start_portkey(tmp, port, up)
            self.env = {"BENCH_PORTKEY_HOST": f"http://127.0.0.1:{up}/v1", "BENCH_AUTH": "Bearer dummy"}
            self.headers = ["x-portkey-provider: openai", f"x-portkey-custom-host: http://127.0.0.1:{up}/v1",
                            "Authorization: Bearer dummy"]
        elif name in ("llm-router", "llm-router-nohist"):
            # llm-router records the request history (bodies included, the
            # default); llm-router-nohist runs with LLM_ROUTER_HISTORY=0
            self.proc = start_router(build, tmp, port, up, history="0" if name.endswith("nohist") else None)
            self.env = {"BENCH_AUTH": self.proc.auth}
            self.headers = [f"Authorization: {self.proc.auth}"]
        if self.proc:
            wait_port(port)
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.r = {}

    def cpu(self):
        return cpu_seconds(self.proc.pid) if self.proc else 0.0


def settle(t, limit_s=15):
    """Waits until t's proxy has stopped working off the last load: Portkey
    answers its backlog for seconds after wrk is gone, and that CPU on the
    shared core landed on whichever target ran next (its p99 at 256
    connections rose 1.5x)."""
    if not t.proc:
        return
    end = time.time() + limit_s
    last = t.cpu()
    while time.time() < end:
        time.sleep(0.2)
        now = t.cpu()
        if now - last < 0.01:
            return
        last = now


def run_all(names, build, tmp, up, args, mock):
    """Every target runs at once (idle ones cost nothing) and each measurement
    takes them in turn, repeat by repeat: A B C A B C ... so that this shared
    machine's slow and fast moments fall on every target alike, instead of on
    whichever happened to run then."""
    ts = [Target(n, build, tmp, up) for n in names]
    time.sleep(0.5)
    for t in ts:
        t.r["rss_idle"] = rss_mb(t.proc.pid) if t.proc else 0.0
        if t.proc:
            reset_peak(t.proc.pid)
        wrk(t.url, 8, 1, t.env)  # warm-up
    for conns in (1, 64, 256):
        for t in ts:
            t.r[conns] = []
        for _ in range(args.repeats):
            for t in ts:
                c0 = t.cpu()
                w = wrk(t.url, conns, args.duration, t.env)
                w["cpu_us"] = (t.cpu() - c0) * 1e6 / max(w["total"], 1) if t.proc else 0
                t.r[conns].append(w)
                settle(t)
    for t in ts:
        t.r["rss_load"] = rss_mb(t.proc.pid, "VmHWM") if t.proc else 0.0
        t.r["same_core"], t.r["sse_ttfb"], t.r["sse_tput"] = [], [], []
    # the 1-connection run again with the proxy moved onto the load's core: what
    # the proxy itself adds, without the VM's cross-core wake-up of an idle vCPU
    # (a few hundred us here, paid by every proxy alike)
    for _ in range(args.repeats):
        for t in ts:
            if t.proc:
                pin(t.proc.pid, 1)
            t.r["same_core"].append(wrk(t.url, 1, args.duration, t.env))
            if t.proc:
                pin(t.proc.pid, 0)
            if t.name == "direct":
                # and no proxy at all, the mock moved to the other core: one
                # cross-core round trip, the floor of what a proxy on its own
                # core adds (it makes two)
                pin(mock.pid, 0)
                t.r.setdefault("cross_core", []).append(wrk(t.url, 1, args.duration, t.env))
                pin(mock.pid, 1)
    for _ in range(args.repeats):
        for t in ts:
            t.r["sse_ttfb"].append(sse(build, t.url, 1, 200, t.headers)["ttfb_p50_us"])
    for _ in range(args.repeats):
        for t in ts:
            t.r["sse_tput"].append(sse(build, t.url, 64, 2000, t.headers))
    for t in ts:
        if t.proc:
            t.proc.stop()
    return {t.name: t.r for t in ts}


def hold_streams(build, tmp, args):
    """1,000 concurrent streams through llm-router, each 20 events 50 ms apart."""
    up = free_port()
    mock = Proc([os.path.join(build, "bench", "mock_node")],
                env={"MOCK_PORT": str(up), "MOCK_CHUNKS": "20", "MOCK_GAP_US": "50000"}, core=1)
    wait_port(up)
    port = free_port()
    router = start_router(build, tmp, port, up)
    reset_peak(router.pid)
    try:
        res = sse(build, f"http://127.0.0.1:{port}/v1/chat/completions", 1000, 1000,
                  [f"Authorization: {router.auth}"])
        res["rss_peak_mb"] = rss_mb(router.pid, "VmHWM")
    finally:
        router.stop()
        mock.stop()
    return res


ATTACK_CONNS = 64
LEGIT_CONNS = 64


class Sampler:
    """The peak and last RSS of a process, sampled every 0.1 s in a thread."""

    def __init__(self, pid):
        import threading
        self.pid, self.peak, self.stop_ev = pid, 0.0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.wait(0.1):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.peak


def under_attack(build, tmp, up, args):
    """Legitimate wrk load (64 keep-alive connections, a valid credential)
    without and with 64 unauthenticated connections that keep sending
    16 MiB bodies (attack.py), for llm-router and for nginx with the header
    check; the two take turns within each repeat. RSS of each proxy before
    the attack, its peak during, and 3 s after."""
    ts = [Target(n, build, tmp, up) for n in ("llm-router", "nginx-auth")]
    time.sleep(0.5)
    for t in ts:
        wrk(t.url, 8, 1, t.env)  # warm-up
        t.r = {"calm": [], "attack": [], "rss": [], "attacker": []}
    for _ in range(args.repeats):
        for t in ts:
            settle(t)
            t.r["calm"].append(wrk(t.url, LEGIT_CONNS, args.duration, t.env))
            before = rss_mb(t.proc.pid)
            argv = ["taskset", "-c", "1", sys.executable, os.path.join(HERE, "attack.py"), str(t.port),
                    "-c", str(ATTACK_CONNS), "--size", str(16 << 20)]
            if args.attack_rate:
                argv += ["--rate", str(args.attack_rate)]
            atk = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            s = Sampler(t.proc.pid)
            time.sleep(1)  # the attack at full strength before the measure starts
            t.r["attack"].append(wrk(t.url, LEGIT_CONNS, args.duration, t.env))
            atk.send_signal(signal.SIGTERM)
            out = atk.communicate(timeout=30)[0]
            during = s.stop()
            t.r["attacker"].append(json.loads(out.strip().splitlines()[-1]))
            time.sleep(3)
            t.r["rss"].append((before, during, rss_mb(t.proc.pid)))
    for t in ts:
        t.proc.stop()
    return {t.name: t.r for t in ts}


def print_attack(rows, args):
    r, n = rows["llm-router"], rows["nginx-auth"]
    rate = f"{args.attack_rate} B/s each" if args.attack_rate else "as fast as the socket takes"
    print(f"\nUnder attack: {LEGIT_CONNS} legitimate keep-alive connections (wrk, valid credential) while "
          f"{ATTACK_CONNS} unauthenticated connections send 16 MiB bodies ({rate}, reconnecting when closed); "
          f"medians of {args.repeats} runs x {args.duration}s (spread min-max); nginx: map on Authorization + "
          "`if` returning 401 before the body\n")

    def fig(t, phase, k):
        return [x[k] for x in t[phase]]

    hdr = ["metric", "llm-router", "nginx (header check)", "ratio ours/nginx"]
    lines = []
    for phase, label in (("calm", "no attack"), ("attack", "under attack")):
        for k, unit in (("rps", "req/s"), ("p99", "p99 us")):
            a, b = med(fig(r, phase, k)), med(fig(n, phase, k))
            lines.append([f"{unit} {label}", f"{a:.0f} ({spread(fig(r, phase, k))})",
                          f"{b:.0f} ({spread(fig(n, phase, k))})", f"{a / b:.2f}" if b else "n/a"])
        lines.append([f"errors {label}", str(sum(fig(r, phase, "bad"))), str(sum(fig(n, phase, "bad"))), ""])
    for k, unit in (("rps", "req/s kept under attack"), ("p99", "p99 growth under attack")):
        a = med(fig(r, "attack", k)) / max(med(fig(r, "calm", k)), 1e-9)
        b = med(fig(n, "attack", k)) / max(med(fig(n, "calm", k)), 1e-9)
        lines.append([unit, f"{a:.2f}x", f"{b:.2f}x", f"{a / b:.2f}" if b else "n/a"])
    for i, label in enumerate(("RSS MB before", "RSS MB peak during", "RSS MB 3 s after")):
        lines.append([label, f"{med([x[i] for x in r['rss']]):.1f}", f"{med([x[i] for x in n['rss']]):.1f}", ""])
    for t in (r, n):
        t["atk_conn"] = med([x["connections"] for x in t["attacker"]])
        t["atk_mb"] = med([x["bytes_sent"] / 1e6 for x in t["attacker"]])
    lines.append(["attacker connections/run", f"{r['atk_conn']:.0f}", f"{n['atk_conn']:.0f}", ""])
    lines.append(["attacker MB sent/run", f"{r['atk_mb']:.0f}", f"{n['atk_mb']:.0f}", ""])
    replies = lambda t: ",".join(f"{k}:{v}" for k, v in sorted(t["attacker"][-1]["replies"].items()))
    lines.append(["attacker replies (last run)", replies(r), replies(n), ""])
    widths = [max(len(str(l[i])) for l in lines + [hdr]) for i in range(len(hdr))]
    for l in [hdr] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(l, widths)))


def print_table(rows, args):
    ref = rows.get("nginx")
    names = [n for n in rows if n != "streams_1000"]
    print(f"\nProxy benchmark: medians of {args.repeats} runs x {args.duration}s (spread min-max); "
          "proxy on core 0, load + mock on core 1; targets measured in turn within each repeat; ratios vs nginx\n")
    hdr = ["metric"] + names
    lines = []

    def row(label, fn, fmt="{:.0f}", ratio=True):
        cells = [label]
        for n in names:
            try:
                v = fn(rows[n])
                s = fmt.format(v)
                if ratio and ref and n != "nginx" and fn(ref):
                    s += f" ({v / fn(ref):.2f}x)"
                cells.append(s)
            except Exception:
                cells.append("n/a")
        lines.append(cells)

    for c in (1, 64, 256):
        row(f"req/s @{c}", lambda r, c=c: med([x["rps"] for x in r[c]]))
        row(f"  spread @{c}", lambda r, c=c: spread([x["rps"] for x in r[c]]), "{}", False)
        row(f"p50 us @{c}", lambda r, c=c: med([x["p50"] for x in r[c]]))
        row(f"p99 us @{c}", lambda r, c=c: med([x["p99"] for x in r[c]]))
        row(f"errors @{c}", lambda r, c=c: sum(x["bad"] for x in r[c]), "{}", False)
    row("CPU us/req @64", lambda r: med([x["cpu_us"] for x in r[64]]), "{:.1f}")
    direct = rows.get("direct")
    if direct:
        d50 = med([x["p50"] for x in direct[1]])
        row("added p50 us @1", lambda r: med([x["p50"] for x in r[1]]) - d50, "{:.0f}", False)
        s50 = med([x["p50"] for x in direct["same_core"]])
        row("  same core as load", lambda r: med([x["p50"] for x in r["same_core"]]) - s50, "{:.0f}", False)
        dt = med(direct["sse_ttfb"])
        row("added stream TTFB us", lambda r: med(r["sse_ttfb"]) - dt, "{:.0f}", False)
    row("stream events/s @64", lambda r: med([x["events_per_s"] for x in r["sse_tput"]]))
    row("stream errors", lambda r: sum(x["errors"] for x in r["sse_tput"]), "{}", False)
    row("RSS idle MB", lambda r: r["rss_idle"], "{:.1f}", False)
    row("RSS peak MB", lambda r: r["rss_load"], "{:.1f}", False)
    widths = [max(len(str(l[i])) for l in lines + [hdr]) for i in range(len(hdr))]
    for l in [hdr] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(l, widths)))
    if direct and direct.get("cross_core"):
        x50 = med([x["p50"] for x in direct["cross_core"]])
        print(f"\nNo proxy, the mock on the other core: p50 @1 {x50:.0f} us, {x50 - s50:.0f} us more than on the load's "
              f"core (spread {spread([x['p50'] for x in direct['cross_core']])}): one cross-core round trip on this "
              "machine; a proxy on its own core makes two")
    s = rows.get("streams_1000")
    if s:
        print(f"\nllm-router, 1000 concurrent streams (20 events, 50 ms apart): {s['requests']} streams, "
              f"{s['errors']} errors, max open {s['max_open']}, RSS peak {s['rss_peak_mb']:.1f} MB, "
              f"TTFB p50 {s['ttfb_p50_us']} us p99 {s['ttfb_p99_us']} us")
    if ref and "llm-router" in rows and "portkey" in rows:
        rr = med([x["rps"] for x in rows["llm-router"][64]])
        print(f"\nllm-router / nginx req/s @64: {rr / med([x['rps'] for x in ref[64]]):.2f}   "
              f"llm-router / portkey: {rr / max(med([x['rps'] for x in rows['portkey'][64]]), 1):.1f}")


if __name__ == "__main__":
    main()
