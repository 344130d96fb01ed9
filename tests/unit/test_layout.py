"""The layout of tests/, pinned so it cannot rot: every test in a kind's folder, unit tests in the folder of their
box named after the module they test, every folder a package."""

from __future__ import annotations

from pathlib import Path

from tests.support import REPO_ROOT

TESTS = REPO_ROOT / "tests"
UNIT = TESTS / "unit"
KINDS = ("unit", "data", "model", "api", "e2e")  # support/ holds the shared helpers, never a test
BOXES = ("model", "training_jobs", "chalice_app", "local_stack", "loadtest", "locking", "devkit")
# Unit tests of something other than one module, each with its reason.
NOT_ONE_MODULE = {
    "test_layout.py": "this file: the layout of tests/ itself",
    "test_workflows.py": "the CI workflows, which are YAML in .github/workflows/",
    "test_import_graph.py": "the borders between every box: the imports of the whole tree",
    "test_docs.py": "README.md and docs/: the strict site build and every path and command the pages name",
    "test_makefile.py": "the Makefile: its help, its sections against the front pages' target table, its variables",
    "chalice_app/ops/test_drift_stack.py": "the drift job's AWS wiring across boxes: its policy (policies.py), the "
                                           "packaged function (deploy.py), the infra alarm, "
                                           "model/tools/deploy_endpoint.py's baseline key",
}


def all_test_files() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def module_under_test(test: Path) -> Path | None:
    """tests/unit/<path>/test_<module>.py tests <path>/<module>.py; test_<module>_<aspect>.py one aspect of it."""
    folder = REPO_ROOT / test.parent.relative_to(UNIT)
    name = test.stem.removeprefix("test_")
    aspects = (module for module in folder.glob("*.py") if name.startswith(f"{module.stem}_"))
    return next((module for module in (folder / f"{name}.py", *aspects) if module.is_file()), None)


def test_every_test_file_lives_in_the_folder_of_its_kind() -> None:
    kinds = {test.relative_to(TESTS).parts[0] for test in all_test_files()}
    assert kinds <= set(KINDS)


def test_every_unit_test_sits_in_its_box_and_is_named_after_a_module_there() -> None:
    unnamed = []
    for test in all_test_files():
        if not test.is_relative_to(UNIT) or (relative := test.relative_to(UNIT).as_posix()) in NOT_ONE_MODULE:
            continue
        if relative.split("/")[0] not in BOXES or module_under_test(test) is None:
            unnamed.append(relative)
    assert unnamed == [], "name it tests/unit/<folder of the module>/test_<module>[_<aspect>].py"


def test_every_exception_still_exists() -> None:
    assert [name for name in NOT_ONE_MODULE if not (UNIT / name).is_file()] == []


def test_every_test_folder_is_a_package() -> None:
    """Test modules are imported as tests.<kind>.…: without __init__.py, two boxes' test_deploy.py would clash."""
    folders = {path.parent for path in TESTS.rglob("*.py")}
    assert sorted(str(folder.relative_to(TESTS)) for folder in folders if not (folder / "__init__.py").is_file()) == []
