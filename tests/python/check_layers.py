#!/usr/bin/env python3
"""Checks the layering of src/ (docs/architecture.md, "What may include what").

Each folder of src/ is one library (or program). A file may include headers of its
own folder and of the folders its folder is allowed to use, nothing else; and there
are no include cycles, between headers or between modules (a module is a .c file with
its .h: trainer.c including checkpointing.h while checkpointing.c includes trainer.h
is a cycle). Prints each violation with file and line, exits 1 if there is any.

usage: check_layers.py SRC_DIR
"""
import os
import re
import sys

# Who may use whom. Mirrors the target_link_libraries of src/*/CMakeLists.txt.
ALLOWED = {
    "core": set(),
    "device": {"core"},
    "nn": {"core", "device"},
    "train": {"core", "device"},
    "io": {"core"},
    "tb": {"core"},
    "comm": {"core", "device"},
    "psproto": {"core", "train"},
    "onnx": {"core", "device", "nn"},
    "worker": {"core", "device", "nn", "train", "io", "tb", "comm", "psproto", "onnx", "keras"},
    "paramserver": {"core", "train", "io", "tb", "psproto"},
    "keras": {"core", "device", "nn", "io"},
}
# Headers protoc-c generates into the build tree, by the library that owns the schema.
GENERATED = {"ps.pb-c.h": "psproto", "tensorboard_event.pb-c.h": "tb",
             "onnx.pb-c.h": "onnx"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(src):
    for lib in sorted(os.listdir(src)):
        top = os.path.join(src, lib)
        if not os.path.isdir(top):
            continue
        for dirpath, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith((".c", ".h", ".cu", ".cuh")):
                    yield lib, os.path.join(dirpath, f)


def public_headers(src):
    """dtrain/X.h -> (library, path) for every src/LIB/include/dtrain/X.h."""
    found = {}
    for lib in os.listdir(src):
        inc = os.path.join(src, lib, "include", "dtrain")
        if os.path.isdir(inc):
            for f in os.listdir(inc):
                found["dtrain/" + f] = (lib, os.path.join(inc, f))
    return found


def resolve(name, path, lib, src, public):
    """The (library, file) an #include "name" in path refers to; file None if generated."""
    if name in public:
        return public[name]
    if name in GENERATED:
        return GENERATED[name], None
    for base in (os.path.dirname(path), os.path.join(src, lib)):
        candidate = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(candidate):
            return candidate.split(os.sep)[len(src.split(os.sep))], candidate
    return None, None


def module(src, path):
    """src/LIB/x.c, src/LIB/x.h and src/LIB/include/dtrain/x.h are module LIB/x."""
    lib = os.path.relpath(path, src).split(os.sep)[0]
    return lib + "/" + os.path.splitext(os.path.basename(path))[0]


def cycles(graph):
    """Every group of modules that reach each other (strongly connected, size > 1)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def check(src):
    src = os.path.normpath(os.path.abspath(src))
    public = public_headers(src)
    problems, graph, uses = [], {}, {}
    for lib, path in sources(src):
        rel = os.path.relpath(path, src)
        if lib not in ALLOWED:
            problems.append(f"{rel}: src/{lib} is not a known library (add it to ALLOWED)")
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                owner, target = resolve(m.group(1), path, lib, src, public)
                if owner is None:
                    problems.append(f"{rel}:{lineno}: \"{m.group(1)}\" is not a header of src/")
                    continue
                if owner != lib:
                    uses.setdefault(lib, set()).add(owner)
                    if owner not in ALLOWED[lib]:
                        problems.append(f"{rel}:{lineno}: src/{lib} includes \"{m.group(1)}\" "
                                        f"of src/{owner}, which it may not use")
                if target and module(src, target) != module(src, path):
                    graph.setdefault(module(src, path), set()).add(module(src, target))
    for a in sorted(uses):
        for b in sorted(uses[a]):
            if a < b and a in uses.get(b, ()):
                problems.append(f"src/{a} and src/{b} include each other")
    for group in cycles(graph):
        problems.append("include cycle among modules " + ", ".join(group))
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    print(f"check_layers: {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
