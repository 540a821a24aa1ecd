"""The package's shape: no import loops, and no module imports a module of a higher layer.

The layers are those of docs/architecture.md (the map states them; this test holds the code to
them). Every import counts, at module level or inside a function: a deferred import is still a
dependency. Imports of third-party modules are ignored. Walks the source with ``ast``; nothing is
imported.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "rag"

# Lowest first. A module may import modules of its own layer or below, never above.
LAYERS: list[tuple[str, list[str]]] = [
    ("leaves", ["rag.errors", "rag.schema", "rag.sentences", "rag.lexical", "rag.aliases", "rag.formats", "rag.hub",
                "rag.encoders", "rag.eval", "rag.eval.metrics", "rag.readers.settings", "rag.readers.base",
                "rag.stores.base"]),
    ("text", ["rag.documents", "rag.chunking", "rag.analysis", "rag.analysis_worker", "rag.embedding",
              "rag.adapters"]),
    ("storage", ["rag.stores", "rag.stores.faiss_store", "rag.stores.milvus_store", "rag.index.versions"]),
    ("index", ["rag.index", "rag.index.opened", "rag.index.build", "rag.index.distributed"]),
    ("retrieval and readers", ["rag.retrieval", "rag.windows", "rag.readers", "rag.readers.int8", "rag.readers.neural",
                               "rag.readers.features", "rag.readers.fusion", "rag.readers.registry"]),
    ("answer", ["rag.answer"]),
    ("pipeline", ["rag.pipeline", "rag"]),
    ("eval and train", ["rag.eval.datasets", "rag.eval.plan", "rag.eval.scoring", "rag.eval.report",
                        "rag.eval.plots", "rag.eval.runner", "rag.eval.reader_table", "rag.train",
                        "rag.train.neural", "rag.train.compress", "rag.train.calibrate_int8", "rag.train.features",
                        "rag.train.fusion", "rag.train.tuning", "rag.train.soup", "rag.train.distill",
                        "rag.train.negatives", "rag.train.low_overlap", "rag.train.paraphrases",
                        "rag.train.precision"]),
    ("front ends", ["rag.web", "rag.web.engine", "rag.web.render", "rag.web.app", "rag.cli"]),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(pkg: Path) -> dict[str, Path]:
    return {module_name(p, pkg): p for p in sorted(pkg.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports (anywhere in its source)."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub" imports the module pkg.sub when there is one.
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # "import rag.index.build as b" -> rag.index.build
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph(pkg: Path) -> dict[str, set[str]]:
    mods = package_modules(pkg)
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
    return sorted(out)


def layer_violations(graph: dict[str, set[str]], layers: list[tuple[str, list[str]]]) -> list[str]:
    level = {m: n for n, (_, mods) in enumerate(layers) for m in mods}
    bad = [f"{m} is in no layer: place it in LAYERS and in docs/architecture.md" for m in sorted(graph)
           if m not in level]
    for m in sorted(graph):
        for t in sorted(graph[m]):
            if m in level and t in level and level[t] > level[m]:
                bad.append(f"{m} ({layers[level[m]][0]}) imports {t} ({layers[level[t]][0]})")
    return bad


# --- the package -------------------------------------------------------------------------------

def test_no_import_loops():
    assert loops(import_graph(PKG)) == []


def test_no_module_imports_a_higher_layer():
    assert layer_violations(import_graph(PKG), LAYERS) == []


def test_layers_name_each_module_once_and_only_real_ones():
    listed = [m for _, mods in LAYERS for m in mods]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(package_modules(PKG))


def test_the_map_names_every_module_in_its_layer():
    """docs/architecture.md lists each module once, under the layer the test holds it to."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    named = {}
    for sec in sections:
        sec = sec.split("\n## ", 1)[0]  # a layer's section ends at the next heading of any level
        head = sec.splitlines()[0]
        for m in re.findall(r"`(rag(?:\.[a-z_][a-z0-9_]*)*)`", sec):
            named.setdefault(m, set()).add(head)
    for n, (layer, mods) in enumerate(LAYERS):
        for m in mods:
            assert m in named, f"docs/architecture.md does not name {m}"
            assert any(h.startswith(f"L{n} ") for h in named[m]), (m, named[m])


def test_stores_import_nothing_above_them():
    graph = import_graph(PKG)
    for m in ("rag.stores", "rag.stores.faiss_store", "rag.stores.milvus_store", "rag.stores.base"):
        assert {t for t in graph[m] if not t.startswith("rag.stores")} <= {"rag.errors"}, (m, graph[m])


# --- the checker can fail ----------------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root / "toy"


def test_a_loop_and_an_upward_import_are_caught(tmp_path):
    pkg = _write(tmp_path, {
        "toy/__init__.py": "",
        "toy/low.py": "def f():\n    from .high import g  # deferred, still a dependency\n",
        "toy/high.py": "from toy import low\nimport json\n",
        "toy/sub/__init__.py": "from ..low import f\n",
        "toy/sub/leaf.py": "from .. import high\n",
    })
    graph = import_graph(pkg)
    assert graph["toy.low"] == {"toy.high"} and graph["toy.high"] == {"toy.low"}
    assert graph["toy.sub"] == {"toy.low"} and graph["toy.sub.leaf"] == {"toy.high"}
    assert loops(graph) == [["toy.high", "toy.low"]]
    layers = [("bottom", ["toy", "toy.low", "toy.sub.leaf"]), ("top", ["toy.high", "toy.sub"])]
    assert layer_violations(graph, layers) == [
        "toy.low (bottom) imports toy.high (top)", "toy.sub.leaf (bottom) imports toy.high (top)"]


def test_a_module_outside_the_layers_is_reported(tmp_path):
    pkg = _write(tmp_path, {"toy/__init__.py": "", "toy/new.py": "x = 1\n"})
    assert layer_violations(import_graph(pkg), [("all", ["toy"])]) == [
        "toy.new is in no layer: place it in LAYERS and in docs/architecture.md"]


def test_no_long_files_but_the_named_ones(limit=600):
    """Files over ~600 lines hold one concept each; docs/architecture.md says which and why."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    long = {module_name(p, PKG) for p in PKG.rglob("*.py") if len(p.read_text(encoding="utf-8").splitlines()) > limit}
    section = text.split("## Long files", 1)[1].split("\n## ", 1)[0] if "## Long files" in text else ""
    assert long <= set(re.findall(r"`(rag(?:\.[a-z_]+)+)`", section)), long
