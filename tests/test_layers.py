"""The package's layers, checked from the source: every import of every cxmetrics module (top-level,
function-local and relative alike) forms a graph that must have no cycles and must point one way.

A failure lists every violation, one per line, as ``module -> imported (line N)``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cxmetrics"

#: The layers, bottom first: a module imports only modules of its own folder or of a lower layer
#: (cxmetrics/__init__.py, which wires the commit step and the old flat names, sits above all).
#: ``tools`` (bench, docs) is tooling outside the library: above the CLI, imported by ``__main__`` only.
LAYERS = [("core",), ("store",), ("metrics",), ("commit", "registers"), ("views",), ("charts",), ("story",),
          ("cli", "ui"), ("tools",), ("__init__", "__main__")]
RANK = {folder: i for i, group in enumerate(LAYERS) for folder in group}


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) if parts else "__init__"


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str | None:
    """The absolute module ``from … import`` refers to, inside cxmetrics (else None)."""
    if node.level:
        base = module.split(".") if module != "__init__" else []
        if not is_pkg:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        return ".".join(base + ([node.module] if node.module else []))
    if node.module and (node.module == "cxmetrics" or node.module.startswith("cxmetrics.")):
        return node.module[len("cxmetrics."):] if node.module != "cxmetrics" else ""
    return None


def imports() -> dict[str, list[tuple[str, int]]]:
    """Each module → the cxmetrics modules it imports (anywhere in it) with the line, plus
    ``streamlit`` when it imports streamlit."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_name(f) for f in files}
    graph: dict[str, list[tuple[str, int]]] = {}
    for f in files:
        mod, is_pkg = _name(f), f.name == "__init__.py"
        edges = graph.setdefault(mod, [])
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "streamlit":
                        targets.append("streamlit")
                    elif a.name.startswith("cxmetrics."):
                        targets.append(a.name[len("cxmetrics."):])
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and (node.module or "").split(".")[0] == "streamlit":
                    targets.append("streamlit")
                base = _resolve(mod, is_pkg, node)
                if base is not None:
                    for a in node.names:  # `from . import x` imports module x when it is one
                        sub = f"{base}.{a.name}" if base else a.name
                        targets.append(sub if sub in modules else (base or "__init__"))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" \
                    and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).startswith("cxmetrics."):
                targets.append(node.args[0].value[len("cxmetrics."):])
            for t in targets:
                if t != mod and (t in modules or t == "streamlit"):
                    edges.append((t, node.lineno))
    return graph


def _top(mod: str) -> str:
    return mod.split(".")[0]


def cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _ in graph.get(v, ()):
            if w == "streamlit":
                continue
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(graph) -> list[str]:
    bad = []
    for mod, edges in sorted(graph.items()):
        if _top(mod) not in RANK:
            bad.append(f"{mod} is in no layer: put it in one of {', '.join(f for g in LAYERS for f in g)}")
            continue
        for target, line in edges:
            where = f"{mod} -> {target} (line {line})"
            if target == "streamlit":
                if mod != "ui":
                    bad.append(f"only ui imports streamlit: {where}")
            elif _top(target) != _top(mod) and RANK.get(_top(target), 99) >= RANK[_top(mod)]:
                bad.append(f"upward or sideways import across layers: {where}")
    return bad


def test_the_graph_sees_function_local_and_relative_imports():
    graph = imports()
    assert any(t == "store.schema" for t, _ in graph["store"])
    assert any(t == "tools" for t, _ in graph["__main__"])
    assert any(t == "cli" for t, _ in graph["tools"])
    assert any(t == "streamlit" for t, _ in graph["ui"])


def test_no_import_cycles():
    found = cycles(imports())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_layer_rules():
    bad = violations(imports())
    assert not bad, f"{len(bad)} layer violations:\n" + "\n".join(bad)


def test_the_rules_catch_an_upward_import_and_a_cycle():
    graph = {"store.summaries": [("metrics.churn", 3)], "metrics.churn": [("store.summaries", 5)],
             "core.filters": [("streamlit", 1)], "ui": [("streamlit", 2)], "stray": []}
    assert sorted(violations(graph)) == sorted([
        "only ui imports streamlit: core.filters -> streamlit (line 1)",
        "upward or sideways import across layers: store.summaries -> metrics.churn (line 3)",
        "stray is in no layer: put it in one of " + ", ".join(f for g in LAYERS for f in g)])
    assert cycles(graph) == [["metrics.churn", "store.summaries"]]


def outside_tools(graph) -> list[str]:
    """Imports of ``tools`` from anywhere but ``tools`` itself and the ``__main__`` entry point."""
    return [f"{mod} -> {target} (line {line})" for mod, edges in sorted(graph.items()) for target, line in edges
            if _top(target) == "tools" and _top(mod) not in ("tools", "__main__")]


def test_nothing_in_the_library_imports_the_tools():
    graph = imports()
    assert {"tools.bench", "tools.docs"} <= set(graph), "the tools live in cxmetrics/tools/"
    bad = outside_tools(graph)
    assert not bad, "only __main__ imports cxmetrics.tools:\n" + "\n".join(bad)
    assert outside_tools({"__init__": [("tools.bench", 9)], "__main__": [("tools", 1)]}) == [
        "__init__ -> tools.bench (line 9)"]
