"""Start `python -m model.serving.server` in a subprocess and stop it cleanly: for tests and benchmarks.

    with running_endpoint(Path("artifacts/model")) as url:
        boto3.client("sagemaker-runtime", endpoint_url=url).invoke_endpoint(EndpointName="news-classifier", ...)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit.local_servers import NotUpError, answers, wait_until
from devkit.repo import REPO_ROOT
from model.serving.server import LISTENING


class EndpointStartError(RuntimeError):
    pass


def serve_command(model_dir: Path, host: str, port: int, endpoint_name: str | None = None,
                  endpoints: Mapping[str, Path] | None = None, args: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "model.serving.server", "--host", host, "--port", str(port),
               "--model-dir", str(model_dir)]
    if endpoint_name:
        command += ["--endpoint-name", endpoint_name]
    for name, folder in (endpoints or {}).items():
        command += ["--endpoint", f"{name}={folder}"]
    return [*command, *args]


@dataclass(frozen=True)
class RunningServer:
    """A model server that answers, and the URL it answers on."""

    process: subprocess.Popen
    url: str


def listening_url(log_path: Path) -> str | None:
    """The server's URL from its `listening` log line (the port it bound), None until that line is written."""
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line still being written, or not one of the server's JSON lines
        if isinstance(entry, dict) and entry.get("message") == LISTENING:
            return f"http://{entry['host']}:{entry['port']}"
    return None


def wait_until_healthy(process: subprocess.Popen, timeout_s: float, log_path: Path) -> str:
    """Wait for the server to say where it listens, then for GET /ping to answer 200; its URL. Fails early, with
    the server's log, if the process dies."""
    url: str | None = None

    def healthy() -> bool:
        nonlocal url
        url = url or listening_url(log_path)
        return url is not None and answers(f"{url}/ping")

    try:
        wait_until(healthy, time.monotonic() + timeout_s, process)
    except NotUpError as exc:
        why = (f"exited with {exc.returncode}" if exc.returncode is not None
               else f"not healthy after {timeout_s:g} s")
        raise EndpointStartError(f"model server {why}:\n{log_path.read_text()[-4000:]}") from None
    assert url is not None  # healthy() held
    return url


def stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM (graceful: in-flight requests finish), SIGKILL only if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = REPO_ROOT,
                   log_path: Path | None = None, startup_timeout_s: float = 120.0) -> Iterator[RunningServer]:
    """Run a model-server command (port 0: the OS picks a free port as it binds) until its `/ping` answers, yield
    the process and the URL its log names, stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="model-serve-") as scratch:
        log_path = log_path or Path(scratch) / "serve.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                       env={**os.environ, **(env or {})})
        try:
            yield RunningServer(process, wait_until_healthy(process, startup_timeout_s, log_path))
        finally:
            stop(process)


@contextmanager
def running_endpoint(model_dir: Path, *, endpoint_name: str | None = None, endpoints: Mapping[str, Path] | None = None,
                     host: str = "127.0.0.1", port: int = 0, args: Sequence[str] = (),
                     env: Mapping[str, str] | None = None, log_path: Path | None = None,
                     startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Yield the base URL of a healthy `python -m model.serving.server` (port 0: a free port the server binds
    itself); its JSON log goes to `log_path` (temp by default)."""
    command = serve_command(model_dir, host, port, endpoint_name, endpoints, args)
    with running_server(command, env=env, log_path=log_path, startup_timeout_s=startup_timeout_s) as server:
        yield server.url
