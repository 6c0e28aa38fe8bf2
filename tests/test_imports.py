"""The import graph between flanlab modules (issue 14): no cycle among module-level imports.

The graph is read from the source with ast, over flanlab/**/*.py, nothing imported:
- a module-level import is one executed when the module is imported (at top level, or inside a top-level
  if/try/with); one under `if TYPE_CHECKING:` is not executed and is left out;
- a function-level import is one inside a def (run when the function is called). They are kept only where
  they keep the CLI fast (flanlab/cli.py loads a command's module when the command runs; a command's --help
  loads what its arguments need) or load heavy libraries late (torch, transformers, matplotlib).
No cycle among module-level imports, and none either when function-level imports are counted too.
`from flanlab.a import b` is an edge to flanlab.a.b when that is a module, else to flanlab.a.

Run `python tests/test_imports.py` to print the counts and any cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flanlab"


@dataclass
class ImportGraph:
    modules: set[str] = field(default_factory=set)
    module_level: dict[str, set[str]] = field(default_factory=dict)  # module -> flanlab modules it imports
    function_level: list[tuple[str, int, str]] = field(default_factory=list)  # (module, line, imported module)


def module_name(path: Path, root: Path) -> str:
    """flanlab/eval/spec.py -> flanlab.eval.spec (root: the folder holding the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool, modules: set[str]) -> list[str]:
    """The flanlab modules an import statement loads (explicitly named; the parent packages Python also runs
    are not edges, as in import-linter and pydeps)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "flanlab"]
    if node.level:  # relative: from . import x / from ..a import b
        base = here.split(".") if is_package else here.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "flanlab":
        return []
    found = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        found.append(sub if sub in modules else source)
    return sorted(set(found))


def build_graph(package: Path = PACKAGE) -> ImportGraph:
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    graph = ImportGraph(modules={module_name(p, package.parent) for p in files})
    for path in files:
        here = module_name(path, package.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = graph.module_level.setdefault(here, set())
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool) -> None:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.orelse:
                    visit(child, in_function)
                return
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, here, is_package, graph.modules):
                    if in_function:
                        graph.function_level.append((here, node.lineno, target))
                    elif target != here:
                        edges.add(target)
                return
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(tree, False)
    return graph


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, as cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return components


def test_graph_reader_sees_both_levels_and_a_cycle(tmp_path):
    """The reader itself: a module-level cycle is found, a function-level import and a TYPE_CHECKING import
    are not edges, relative and submodule imports resolve."""
    pkg = tmp_path / "flanlab"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from flanlab.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .c import x\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import flanlab.a\n"
                                      "def f():\n    from flanlab import a\n")
    graph = build_graph(pkg)
    assert graph.module_level["flanlab.a"] == {"flanlab.sub.b"}
    assert graph.module_level["flanlab.sub.b"] == {"flanlab.sub.c"}
    assert graph.module_level["flanlab.sub.c"] == set()
    assert graph.function_level == [("flanlab.sub.c", 5, "flanlab.a")]
    assert find_cycles(graph.module_level) == []
    (pkg / "sub" / "c.py").write_text("import flanlab.a\nx = 1\n")
    assert find_cycles(build_graph(pkg).module_level) == [["flanlab.a", "flanlab.sub.b", "flanlab.sub.c"]]


def test_no_cycle_among_module_level_imports():
    graph = build_graph()
    assert len(graph.modules) > 50, "the package was not found"
    cycles = find_cycles(graph.module_level)
    assert not cycles, "import cycles between flanlab modules (module-level imports): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_cycle_hidden_behind_a_function_level_import():
    """A function-level import must not close a cycle either (metrics <-> benchmarks, catalog <-> flan_collection
    and fileio <-> runlock did, before issue 14): counting both levels, the graph has no cycle."""
    graph = build_graph()
    edges = {module: set(targets) for module, targets in graph.module_level.items()}
    for module, _, target in graph.function_level:
        if target != module:
            edges[module].add(target)
    cycles = find_cycles(edges)
    assert not cycles, "import cycles between flanlab modules (module- and function-level imports): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_cli_import_loads_no_heavy_library():
    """`flanlab --help` stays fast: importing flanlab.cli loads neither torch nor transformers (nor numpy's
    heavy users: datasets, accelerate)."""
    code = ("import sys, flanlab.cli; heavy = [m for m in ('torch', 'transformers', 'datasets', 'accelerate', "
            "'safetensors', 'peft') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing flanlab.cli loads {out.stdout.strip()}"


if __name__ == "__main__":
    g = build_graph()
    statements = {(module, line) for module, line, _ in g.function_level}
    print(f"{len(g.modules)} modules, {sum(len(e) for e in g.module_level.values())} module-level edges; "
          f"function-level imports of flanlab modules: {len(statements)} statements, {len(g.function_level)} edges")
    for c in find_cycles(g.module_level):
        print("cycle:", " <-> ".join(c))
    if "-v" in sys.argv:
        for mod, line, target in sorted(g.function_level):
            print(f"  {mod}:{line} -> {target}")
