"""The box borders of docs/architecture.md, enforced: each box imports only the boxes it may, and no module takes
part in an import cycle. Every import counts, at module level or inside a function, since either one ties the
code together and a function-level import only hides a cycle until that function runs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO_ROOT as REPO

PROJECT_ROOTS = ("model", "training_jobs", "chalice_app", "local_stack", "loadtest", "locking", "devkit")
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
    "chalice_app/reports/": "chalice_app tools",
    "local_stack/": "local_stack",
    "loadtest/": "loadtest",
    "locking/": "locking",
    "devkit/": "devkit",
}

# The border table: the boxes each box may import from.
MAY_IMPORT_BOXES = {
    "model core": {"model core"},
    "model serving": {"model core", "model serving"},
    "model tools": {"model core", "model serving", "model tools"},
    "training_jobs": {"model core", "training_jobs"},
    "chalice_app root": {"chalice_app root"},  # zipped alone into the Lambda
    "chalice_app tools": {"chalice_app root", "chalice_app tools", "model tools"},  # promote deploys an endpoint
    "local_stack": {"chalice_app root", "local_stack"},  # creates the table, writes records, as the API does
    "loadtest": {"loadtest"},
    "locking": {"locking"},  # runs before .venv exists (make setup), with the system's Python
    "devkit": {"devkit", "chalice_app root"},  # the stages' settings, read by the API's own parsers
}
# ... and the single modules (with their submodules) of other boxes it may import besides.
MAY_IMPORT_MODULES = {
    "chalice_app tools": ("training_jobs.registry",),  # promote: a version that passed the gate, and its record
}
# devkit holds what every box on the developer's machine needs: each of these boxes may import it, nothing that ships
# may (the Lambda zip, model serving, the training job's code: see test_the_training_job_ships_all_it_imports).
DEVELOPER_BOXES = {"model tools", "training_jobs", "chalice_app tools", "local_stack", "loadtest"}


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
            if name.startswith(f"{LAMBDA_ROOT}.chalicelib"):  # the Lambda's code by its package path: the same modules
                name = name.removeprefix(f"{LAMBDA_ROOT}.")
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
    if target.box in MAY_IMPORT_BOXES[source.box] or (target.box == "devkit" and source.box in DEVELOPER_BOXES):
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
    assert ("devkit.stages", "chalicelib.config") in edges  # by its package path, chalice_app.chalicelib.config
    assert all(module.box in MAY_IMPORT_BOXES for module in graph[0].values())


def test_the_training_job_ships_all_it_imports(graph: tuple[dict[str, Module], list[Import]]) -> None:
    """A SageMaker job runs training_jobs/train.py from a copy of CODE_PACKAGES only: every project module it reaches
    (at module level or in a function) must be in them, so training_jobs may import devkit only outside the job."""
    from training_jobs.launch import CODE_PACKAGES, ENTRY_SCRIPT

    _, imports = graph
    targets: dict[str, set[str]] = {}
    for edge in imports:
        targets.setdefault(edge.source.name, set()).add(edge.target.name)
    reached, pending = set(), [ENTRY_SCRIPT.removesuffix(".py").replace("/", ".")]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(targets.get(name, ()))
    assert {name for name in reached if name.split(".")[0] not in CODE_PACKAGES} == set()


def test_only_the_lambda_code_imports_chalicelib_as_a_top_level_package() -> None:
    """The Lambda and `chalice local` run app.py with chalice_app/ as their root, where the API's code is top-level
    `chalicelib`; everything else imports it by its package path, `chalice_app.chalicelib`, which needs nothing added
    to sys.path (pytest's `pythonpath` has chalice_app/ only for the tests that run app.py as Lambda does)."""
    modules = project_modules()
    found = sorted(f"{module.path}:{line}" for module in modules.values() if module.box != "chalice_app root"
                   for name, line in imported_names(module, ast.parse((REPO / module.path).read_text()))
                   if name.split(".")[0] == "chalicelib")
    assert found == [], "import chalice_app.chalicelib.… instead:\n" + "\n".join(found)


def test_the_tools_import_from_the_repository_root_alone() -> None:
    """What `python -m chalice_app.ops.deploy` does: no PYTHONPATH, no path set up by an import's side effect."""
    roots = [REPO / "chalice_app" / "ops", REPO / "chalice_app" / "reports", REPO / "local_stack", REPO / "devkit"]
    names = sorted(module_name(path.relative_to(REPO)) for root in roots for path in root.rglob("*.py"))
    script = f"import importlib, sys\nfor name in {names!r}: importlib.import_module(name)\n" \
             "print(sorted({name.split('.')[0] for name in sys.modules} & {'chalicelib', 'app'}))"
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
