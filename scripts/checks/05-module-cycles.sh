#!/usr/bin/env bash
# Dependencies inside each crate point one way (functions: bin → lambda → ops → delivery → leancloud_im; the
# server: config, protocol ← store ← presence ← domain ← http, ws): fail if a module imports a module that
# imports it back, directly or through others. Modules are the top-level folders/files of src/ and, inside a
# folder, its files (`delivery::ledger`); an edge is a non-test `use crate::…` / `crate::…` path.
# Usage: scripts/checks/05-module-cycles.sh [SRC_DIR] (default: every crate's src/).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -eq 0 ]; then
  for dir in shared/src functions/src server/src migrate/src; do
    "$0" "$dir"
  done
  exit 0
fi
src=$1
python3 - "$src" <<'PY'
import os, re, sys

src = sys.argv[1]
modules = {}
for dirpath, _, files in os.walk(src):
    for name in files:
        if not name.endswith(".rs"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, name), src)[:-3].split(os.sep)
        if rel[0] == "bin" or rel == ["lib"] or rel == ["main"]:
            continue
        if rel[-1] == "mod":
            rel = rel[:-1]
        modules["::".join(rel)] = os.path.join(dirpath, name)

def owner(path):
    """The longest known module a `crate::a::b::c` path names."""
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        if "::".join(parts[:n]) in modules:
            return "::".join(parts[:n])
    return None

edges = {m: set() for m in modules}
for module, path in modules.items():
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]", text, maxsplit=1)[0]          # in-module tests may look anywhere
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
    parent = module.rsplit("::", 1)[0] if "::" in module else ""
    found = set()
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text):
        found.add(m.group(1))
    for m in re.finditer(r"\bsuper::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text):
        found.add((parent + "::" if parent else "") + m.group(1) if "::" in module else m.group(1))
    for prefix, base in (("crate", ""), ("super", parent)):
        for m in re.finditer(r"\buse\s+" + prefix + r"::\{([^}]*)\}", text):
            for item in m.group(1).split(","):
                item = item.strip().split("::")[0]
                if item and item != "self":
                    found.add(base + "::" + item if base else item)
    for target in found:
        t = owner(target)
        # a module may use its own children (mod.rs re-exports); only edges between distinct modules count,
        # and a parent's own items seen from a child count as an edge to the parent
        if t and t != module and not t.startswith(module + "::"):
            edges[module].add(t)

# cycles: strongly connected components with more than one module
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in sorted(edges[v]):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(modules):
    if v not in index:
        visit(v)
if comps:
    for comp in comps:
        members = set(comp)
        detail = "; ".join(f"{a} → {', '.join(sorted(edges[a] & members))}" for a in comp)
        print(f"module-cycles: cycle among {', '.join(comp)} ({detail})")
    sys.exit(1)
print(f"module-cycles: {len(modules)} modules of {src}, {sum(map(len, edges.values()))} edges, no cycle")
PY
