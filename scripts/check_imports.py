#!/usr/bin/env python3
"""Checks the import graph of `node/poai` against the layers of docs/ARCHITECTURE.md.

Fails (exit 1, one line per problem) on:
- an upward import: a module importing a package of a higher layer;
- an import between node services kept apart (`APART`: e.g. rpc <-> p2p);
- an import cycle between modules, or between top-level packages;
- a `poai` import inside a function without a `# deferred: <why>` comment on its line or the
  line above (outside the CLI layer, which defers on purpose so `poai --help` starts fast).

Usage: python scripts/check_imports.py [ROOT]   (ROOT: the `poai` package dir, default
node/poai).  Imports under `if TYPE_CHECKING:` count for layering, not for cycles.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

# Top-level package (or module) under `poai` -> layer; a module may import its own layer and
# those below.  Keep in step with the layer picture in docs/ARCHITECTURE.md.
LAYERS: dict[str, int] = {
    "compat": 0,                       # the only place for library patches and private names
    "model": 0, "db": 0,               # model, snapshots, blobs and datasets; LevelDB
    "bindings": 0,                     # contract ABIs, named results, reverts in words
    "quiz": 1, "governance": 1,        # the quiz engine; governance contract readers
    "consensus": 2,                    # seal check, difficulty, rejection reasons
    "chain": 3,                        # py-evm chain, VM, genesis, epoch quiz sources
    "txpool": 4,
    "node": 5, "interfaces": 5,        # Node: composition of the roles below it; its ports
    "datadir": 5, "importer": 5, "producer": 5, "devmode": 5, "housekeeping": 5,
    "rpc": 6, "p2p": 6, "market": 6, "inference": 6, "api": 6,  # node services
    "cli": 7,
}
# Node services of one layer that stay apart: they meet through the Node's ports
# (poai.interfaces), so the RPC server never reaches into the network's internals, and the
# network never into the RPC's.
APART: set[tuple[str, str]] = {
    ("rpc", "p2p"), ("p2p", "rpc"), ("inference", "p2p"), ("inference", "rpc"),
    ("market", "p2p"), ("api", "p2p"), ("p2p", "api"), ("p2p", "market"), ("rpc", "api"),
}
DEFERRING_LAYERS = {"cli"}  # function-level imports allowed without a comment
MARKER = "# deferred:"


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[-1] == "commands":
        return "cli"  # a package's `poai ...` subcommands belong to the CLI layer
    return parts[1] if len(parts) > 1 else parts[0]


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module = module
        self.is_package = is_package
        self.modules = modules
        self.found: list[tuple[str, int, bool, bool]] = []  # target, line, in function, typing
        self._depth = 0
        self._typing = 0

    def _add(self, target: str, line: int) -> None:
        if target == "poai" or target.startswith("poai."):
            self.found.append((target, line, self._depth > 0, self._typing > 0))

    def _resolve(self, name: str) -> str:
        # `from poai.x import y`: y may be a submodule
        return name if name in self.modules else name.rsplit(".", 1)[0]

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        is_typing = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        if is_typing:
            self._typing += 1
            for n in node.body:
                self.visit(n)
            self._typing -= 1
            for n in node.orelse:
                self.visit(n)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            pkg = self.module.split(".")
            if not self.is_package:
                pkg = pkg[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join(pkg + ([base] if base else []))
        for alias in node.names:
            self._add(self._resolve(f"{base}.{alias.name}"), node.lineno)


def _marked(lines: list[str], line: int) -> bool:
    """Whether the import at `line` (1-based) carries the marker on its line, or on a comment
    line right above the run of import statements it belongs to."""
    if MARKER in lines[line - 1]:
        return True
    i = line - 2
    while i >= 0:
        text = lines[i].strip()
        if text.startswith(MARKER):
            return True
        if not (text.startswith(("from ", "import ", ")")) or text.endswith(",")):
            return False
        i -= 1
    return False


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def check(root: Path) -> list[str]:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, p) for p in files}
    problems: list[str] = []
    module_graph: dict[str, set[str]] = defaultdict(set)
    package_graph: dict[str, set[str]] = defaultdict(set)
    for path in files:
        mod = module_name(root, path)
        lines = path.read_text().splitlines()
        visitor = _Imports(mod, path.name == "__init__.py", modules)
        visitor.visit(ast.parse("\n".join(lines), str(path)))
        src_top = top(mod)
        src_layer = LAYERS.get(src_top)
        where = f"{path.relative_to(root.parent)}"
        if src_layer is None and mod != "poai":
            problems.append(f"{where}: package '{src_top}' has no layer in {__file__} LAYERS")
            continue
        for target, line, in_function, typing_only in visitor.found:
            dst_top = top(target)
            dst_layer = LAYERS.get(dst_top)
            if target == "poai" or dst_top == src_top:
                pass
            elif dst_layer is None:
                problems.append(f"{where}:{line}: imports '{target}', whose package has no layer")
            elif src_layer is not None and dst_layer > src_layer:
                problems.append(f"{where}:{line}: upward import of {target} (layer {dst_layer}) "
                                f"from layer {src_layer} ({src_top})")
            elif (src_top, dst_top) in APART:
                problems.append(f"{where}:{line}: {src_top} must not import {target}: "
                                "services meet through poai.interfaces")
            if in_function and src_top not in DEFERRING_LAYERS:
                if not _marked(lines, line):
                    problems.append(f"{where}:{line}: import of {target} inside a function "
                                    f"without a '{MARKER} <why>' comment")
            if typing_only or target == "poai":
                continue
            module_graph[mod].add(target if target in modules else target.rsplit(".", 1)[0])
            if dst_top != src_top:
                package_graph[src_top].add(dst_top)
    for comp in find_cycles(package_graph):
        problems.append(f"package import cycle: {' <-> '.join(comp)}")
    for comp in find_cycles(module_graph):
        problems.append(f"module import cycle: {' <-> '.join(comp)}")
    return list(dict.fromkeys(problems))


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "node" / "poai"
    root = Path(argv[1]) if len(argv) > 1 else default
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_imports: {len(problems)} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"check_imports: {root}: layers and cycles OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
