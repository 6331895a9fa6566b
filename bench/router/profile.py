#!/usr/bin/env python3
"""Where llm-router's CPU per proxied request goes.

Runs the C mock node and llm-router (one worker) under valgrind's callgrind,
sends a fixed number of 1 KB chat requests with wrk, and prints instructions
per request and the top functions (self and inclusive). Instruction counts are
deterministic enough for A/B work on a noisy machine, unlike wall-clock time.

  python3 bench/router/profile.py [--build build-bench] [--seconds 5] [--conns 8] [--stream]
"""
import argparse, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(R.ROOT, "build-bench"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--stream", action="store_true", help="SSE requests (sse_load) instead of wrk")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--preload", default="", help="LD_PRELOAD for the router (an allocator to compare)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="llmr-prof-")
    up = R.free_port()
    mock = R.Proc([os.path.join(build, "bench", "mock_node")], env={"MOCK_PORT": str(up), "MOCK_CHUNKS": "20"},
                  log=os.path.join(tmp, "mock.log"))
    R.wait_port(up)
    port = R.free_port()
    out = os.path.join(tmp, "callgrind.out")
    # start_router runs the binary directly; wrap it in valgrind by swapping the path
    real = os.path.join(build, "router", "llm-router")
    wrapper = os.path.join(tmp, "llm-router")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nif [ \"$1\" = apikey ]; then exec {real} \"$@\"; fi\n"
                f"{'LD_PRELOAD=' + args.preload + ' ' if args.preload else ''}exec valgrind --tool=callgrind --callgrind-out-file={out} --dump-instr=no "
                f"--toggle-collect=worker_main {real} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    os.makedirs(os.path.join(tmp, "b", "router"), exist_ok=True)
    os.symlink(wrapper, os.path.join(tmp, "b", "router", "llm-router"))
    router = R.start_router(os.path.join(tmp, "b"), tmp, port, up)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    time.sleep(1)
    # warm-up, then zero the counters so start-up (password hashing) is left out
    R.wrk(url, args.conns, 1, {"BENCH_AUTH": router.auth})
    subprocess.run(["callgrind_control", "-z"], capture_output=True)
    if args.stream:
        res = R.sse(build, url, args.conns, 400, [f"Authorization: {router.auth}"])
        n = res["requests"]
    else:
        n = R.wrk(url, args.conns, args.seconds, {"BENCH_AUTH": router.auth})["total"]
    subprocess.run(["callgrind_control", "-d"], capture_output=True)
    time.sleep(0.5)
    router.stop()
    mock.stop()
    dumps = sorted(f for f in os.listdir(tmp) if f.startswith("callgrind.out") and f != "callgrind.out")
    dump = os.path.join(tmp, dumps[0]) if dumps else out
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", dump], capture_output=True, text=True).stdout
    incl = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=99", dump],
                          capture_output=True, text=True).stdout
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann).group(1).replace(",", ""))
    print(f"requests: {n}   instructions: {total:,}   per request: {total / max(n, 1):,.0f}\n")
    for title, text in (("self", ann), ("inclusive", incl)):
        print(f"top {args.top} ({title}), instructions per request:")
        rows = re.findall(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S+)", text.split("file:function", 1)[1], re.M)
        if title == "self":  # with --toggle-collect the thread's entry frames show whole totals: not self costs
            rows = [r for r in rows if float(r[1]) < 99]
        for ir, pct, fn in rows[: args.top]:
            print(f"  {int(ir.replace(',', '')) / max(n, 1):>9,.0f}  {pct:>5}%  {fn}")
        print()


if __name__ == "__main__":
    main()
