"""app.py under `chalice local`'s autoreload: the reloader Chalice picks in this environment restarts when a file of
the project is written, never when one is read, and the CLI's own import of the app writes no bytecode into the
project it watches. tests/e2e/test_chalice_local_autoreload.py runs the whole command.

Chalice 1.34 (`chalice.cli.reloader.get_best_worker_process`) uses watchdog's observer whenever watchdog is
importable and restarts on any file event it reports; on Linux, watchdog reports reads too (opened, closed without
writing), and each new worker reads app.py again, so `chalice local` restarts forever (aws/chalice#1064). Without
watchdog, Chalice polls modification times once a second, which reads do not change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from chalice.cli.filewatch import RESTART_REQUEST_RC

from devkit.stages import CHALICE_DIR

# One worker of Chalice's reloader, its HTTP server left out: exits with RESTART_REQUEST_RC when the watcher asks for a
# restart, with 0 when argv[2] seconds pass without one. It prints the worker class once it watches.
WORKER = """
import sys
from chalice.cli.reloader import get_best_worker_process

class NoServer:
    def start(self):
        print(get_best_worker_process().__name__, flush=True)

    def shutdown(self):
        pass

sys.exit(get_best_worker_process()(NoServer()).main(sys.argv[1], timeout=float(sys.argv[2])))
"""
SETTLE_S = 1.5  # the stat watcher reads every file's mtime once when it starts, then once a second
WATCH_S = 4.0  # a read at SETTLE_S, then at least two more polls


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "chalicelib").mkdir(parents=True)
    (project / "app.py").write_text("from chalicelib import routes\n")
    (project / "chalicelib" / "routes.py").write_text("ROUTES = []\n")
    return project


def _start_worker(project: Path) -> tuple[subprocess.Popen, str]:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(project), str(WATCH_S)], stdout=subprocess.PIPE,
                              text=True)
    assert worker.stdout is not None
    name = worker.stdout.readline().strip()
    time.sleep(SETTLE_S)
    return worker, name


def test_the_reloader_restarts_on_a_write_and_never_on_a_read(tmp_path: Path) -> None:
    project = _project(tmp_path)
    reader, name = _start_worker(project)
    for path in (project / "app.py", project / "chalicelib" / "routes.py"):
        path.read_text()
    assert reader.wait(WATCH_S + 10) == 0, (
        f"Chalice's reloader ({name}) restarted `chalice local` because a file was read. Chalice 1.34 uses watchdog "
        "whenever it is importable and takes watchdog's read events for changes, so `chalice local` restarts "
        "forever (aws/chalice#1064). Something put watchdog back into .venv (pip show watchdog: Required-by); "
        "MkDocs needs it, which is why the docs tools are in requirements-docs.txt and their own .venv-docs.")
    writer, _ = _start_worker(project)
    with open(project / "chalicelib" / "routes.py", "a") as module:
        module.write("# edited\n")
    assert writer.wait(WATCH_S + 10) == RESTART_REQUEST_RC, f"{name} did not restart after a write"


def test_the_chalice_cli_imports_the_app_without_writing_its_modules_bytecode(tmp_path: Path) -> None:
    """A worker writing chalicelib's bytecode after the reloader looked would restart once more after each edit."""
    environ = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    written = {}
    for cli_mode in (False, True):
        project = Path(shutil.copytree(CHALICE_DIR, tmp_path / f"cli_mode_{cli_mode}",
                                       ignore=shutil.ignore_patterns("__pycache__")))
        env = {**environ, "AWS_CHALICE_CLI_MODE": "true"} if cli_mode else environ
        subprocess.run([sys.executable, "-c", "import app"], cwd=project, env=env, check=True, timeout=120)
        written[cli_mode] = sorted(path.name.split(".")[0] for path in project.glob("chalicelib/__pycache__/*.pyc"))
    assert "transactions" in written[False]  # without the CLI, Python caches bytecode as usual
    assert written[True] == ["__init__"]  # the package's own, written before it runs
