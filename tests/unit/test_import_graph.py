"""The box borders of docs/architecture.md, enforced: each box imports only the boxes it may, and no module takes
part in an import cycle. Every import counts, at module level or inside a function, since either one ties the
code together and a function-level import only hides a cycle until that function runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO_ROOT as REPO

PROJECT_ROOTS = ("model", "training_jobs", "chalice_app", "loadtest", "tools")
LAMBDA_ROOT = "chalice_app"  # on sys.path as the Lambda's root: chalice_app/chalicelib/x.py is `chalicelib.x`

# Which box a file is in: the longest matching path prefix wins.
BOXES = {
    "model/": "model core",
    "model/serving/": "model serving",
    "model/tools/": "model tools",
    "training_jobs/": "training_jobs",
    "chalice_app/app.py": "chalice_app root",
    "chalice_app/chalicelib/": "chalice_app root",
    "chalice_app/ops/": "chalice_app tools",
    "chalice_app/local/": "chalice_app tools",
    "chalice_app/reports/": "chalice_app tools",
    "loadtest/": "loadtest",
    "tools/": "tools",
}

# The border table: the boxes each box may import from ...
MAY_IMPORT_BOXES = {
    "model core": {"model core"},
    "model serving": {"model core", "model serving"},
    "model tools": {"model core", "model serving", "model tools"},
    "training_jobs": {"model core", "training_jobs"},
    "chalice_app root": {"chalice_app root"},  # zipped alone into the Lambda
    "chalice_app tools": {"chalice_app root", "chalice_app tools", "model tools"},
    "loadtest": {"loadtest"},
    "tools": {"tools"},
}
# ... and the single modules (with their submodules) of other boxes it may import besides.
MAY_IMPORT_MODULES = {
    "training_jobs": ("chalice_app.ops.stages", "chalice_app.local.state"),  # feedback: the stage's keys, its table
    "chalice_app tools": ("training_jobs.registry",),  # promote: a version that passed the gate, and its record
    "loadtest": ("chalice_app.local",),
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path  # relative to the repository

    @property
    def box(self) -> str:
        text = self.path.as_posix()
        prefix = max((p for p in BOXES if text == p or (p.endswith("/") and text.startswith(p))), key=len)
        return BOXES[prefix]

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    source: Module
    target: Module
    line: int


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[0] == LAMBDA_ROOT and len(parts) > 1 and parts[1] == "chalicelib":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Module]:
    files = [path for root in PROJECT_ROOTS for path in (REPO / root).rglob("*.py")]
    modules = [Module(module_name(path.relative_to(REPO)), path.relative_to(REPO)) for path in files]
    return {module.name: module for module in modules}


def imported_names(module: Module, tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Every module name an import statement may mean: `from a import b` is module `a.b` or a name in `a`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.package.split(".")
                anchor = ".".join(package[:len(package) - node.level + 1])
                base = f"{anchor}.{base}".strip(".")
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
                yield base, node.lineno


def project_imports(modules: dict[str, Module]) -> list[Import]:
    """The project modules each module imports, each resolved to the most specific module it names."""
    found = []
    for module in modules.values():
        tree = ast.parse((REPO / module.path).read_text(), str(module.path))
        targets: dict[str, int] = {}
        for name, line in imported_names(module, tree):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module.name:
                targets.setdefault(name, line)
        for name, line in targets.items():
            # `from a import b` where b is a module also matched `a`: keep only the most specific module
            if not any(other.startswith(name + ".") and targets[other] == line for other in targets):
                found.append(Import(module, modules[name], line))
    return found


def allowed(source: Module, target: Module) -> bool:
    if target.box in MAY_IMPORT_BOXES[source.box]:
        return True
    granted = MAY_IMPORT_MODULES.get(source.box, ())
    return any(target.name == name or target.name.startswith(name + ".") for name in granted)


def cycles(modules: dict[str, Module], imports: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in imports:
        graph[edge.source.name].add(edge.target.name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return components


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Module], list[Import]]:
    modules = project_modules()
    return modules, project_imports(modules)


def test_every_box_imports_only_what_its_border_allows(graph: tuple[dict[str, Module], list[Import]]) -> None:
    _, imports = graph
    crossings = sorted(f"{edge.source.path}:{edge.line} ({edge.source.box}) imports {edge.target.name} "
                       f"({edge.target.box})" for edge in imports if not allowed(edge.source, edge.target))
    assert not crossings, "border crossings:\n" + "\n".join(crossings)


def test_there_is_no_import_cycle(graph: tuple[dict[str, Module], list[Import]]) -> None:
    modules, imports = graph
    found = cycles(modules, imports)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(component) for component in found)


def test_the_graph_sees_imports_inside_functions_and_the_lambda_root(
        graph: tuple[dict[str, Module], list[Import]]) -> None:
    """The reader itself: a function-level import and a `chalicelib.x` import are both edges."""
    _, imports = graph
    edges = {(edge.source.name, edge.target.name) for edge in imports}
    assert ("chalicelib.transactions", "chalicelib.telemetry") in edges
    assert ("training_jobs.calibrate", "model.predict") in edges  # imported inside a function only
    assert all(module.box in MAY_IMPORT_BOXES for module in graph[0].values())
