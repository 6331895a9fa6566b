#!/usr/bin/env python3
"""Checks that includes only point downward and that no module imports loop.

Layers (docs/architecture.md, "Which folder may include which"):
  common/                 nothing of router/ or node/
  router/src/options.h    the bottom of router/: common only
  router/src/store/       common, options
  router/src/auth/        store, common, options
  router/src/cloud/       common, options (pure translation: no store, no loop)
  router/src/models/      store, common, options
  router/src/core/        cloud, auth, store, common, options
  router/src/api/         core, cloud, models, auth, store, router.h, common, options
  router/src/*.c, router.h, router/main.c: anything in router/
  node/                   common (never router/)
A module is a .c file with its .h (and _int/_internal/_impl headers); the
graph of modules that include each other must have no cycle.
Usage: check_layers.py [ROOT]   (exit 1 with the offending lines)"""
import os, re, sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

ALLOWED = {  # folder -> folders (under router/src) it may include; "" is the top
    "store": {"store"},
    "auth": {"auth", "store"},
    "cloud": {"cloud"},
    "models": {"models", "store"},
    "core": {"core", "cloud", "auth", "store"},
    "api": {"api", "core", "cloud", "models", "auth", "store"},
    "": {"", "api", "core", "cloud", "models", "auth", "store"},
}
TOP_ONLY = {"router.h", "cli.h"}      # top-level headers the lower layers must not include
ANYONE = {"options.h"}                # the bottom of router/


def sources(sub):
    base = os.path.join(ROOT, sub)
    for d, _, files in os.walk(base):
        for f in files:
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def module_of(path):
    name = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"_(int|internal|impl)$", "", name)


def main():
    errors = []
    graph = {}
    for path in sources("router/src"):
        rel = os.path.relpath(path, os.path.join(ROOT, "router/src"))
        folder = os.path.dirname(rel)
        text = open(path, encoding="utf-8").read()
        me = (folder, module_of(path))
        for inc in INC.findall(text):
            target = os.path.join(ROOT, "router/src", inc)
            if not os.path.exists(target):
                continue  # common/ or a system header found elsewhere
            tfolder = os.path.dirname(inc)
            tbase = os.path.basename(inc)
            if tbase in ANYONE and tfolder == "":
                continue
            if folder != "" and tfolder == "" and tbase in TOP_ONLY and not (folder == "api" and tbase == "router.h"):
                errors.append(f"router/src/{rel}: includes {inc}, a top-level header, from {folder}/")
            elif tfolder not in ALLOWED.get(folder, set()) and not (folder == "api" and inc == "router.h"):
                errors.append(f"router/src/{rel}: {folder or 'top'}/ may not include {inc}")
            them = (tfolder, module_of(inc))
            if them != me:
                graph.setdefault(me, set()).add(them)
    for sub in ("common",):
        for path in sources(sub):
            for inc in INC.findall(open(path, encoding="utf-8").read()):
                if inc.startswith(("router", "node", "core/", "api/", "auth/", "store/", "cloud/", "models/")):
                    errors.append(f"{os.path.relpath(path, ROOT)}: common/ includes {inc}")
    for path in sources("node"):
        for inc in INC.findall(open(path, encoding="utf-8").read()):
            if inc.split("/")[0] in ("core", "api", "auth", "store", "cloud", "models") or inc in ("router.h",):
                errors.append(f"{os.path.relpath(path, ROOT)}: node/ includes the router's {inc}")
    # cycles between modules (Tarjan's strongly connected components)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    for comp in sccs:
        names = ", ".join(sorted(f"{f + '/' if f else ''}{m}" for f, m in comp))
        errors.append(f"import loop between modules: {names}")
    for e in errors:
        print(e)
    n = sum(len(s) for s in graph.values())
    print(f"{len(graph)} router modules, {n} include edges, {len(errors)} problem(s)")
    return 1 if errors else 0


def self_test():
    """The check must fail on a tree with an upward include and a loop."""
    import subprocess, tempfile
    with tempfile.TemporaryDirectory() as t:
        files = {
            "router/src/core/a.h": '#include "api/b.h"\n',          # core -> api: upward
            "router/src/api/b.h": '#include "core/a.h"\n',          # and back: a loop
            "router/src/store/s.h": '#include "router.h"\n',        # a top-level header from below
            "router/src/router.h": "",
            "common/c.h": '#include "core/a.h"\n',
        }
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(t, rel)), exist_ok=True)
            open(os.path.join(t, rel), "w").write(text)
        r = subprocess.run([sys.executable, __file__, t], capture_output=True, text=True)
        out = r.stdout
        want = ["core/ may not include api/b.h", "import loop between modules", "a top-level header",
                "common/ includes core/a.h"]
        missing = [w for w in want if w not in out]
        if r.returncode != 1 or missing:
            print(out)
            print("self-test failed: missing", missing)
            return 1
    print("self-test: the check catches upward includes, loops and common/ reaching up")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    sys.exit(main())
