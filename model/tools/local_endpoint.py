"""Start `python -m model.serving.server` in a subprocess and stop it cleanly: for tests and benchmarks.

    with running_endpoint(Path("artifacts/model")) as url:
        boto3.client("sagemaker-runtime", endpoint_url=url).invoke_endpoint(EndpointName="news-classifier", ...)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from model.tools.local_servers import NotUp, answers, unused_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


class EndpointFailedToStart(RuntimeError):
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


def wait_until_healthy(url: str, process: subprocess.Popen, timeout_s: float, log_path: Path) -> None:
    """Poll GET /ping until 200; fail early, with the server's log, if the process dies."""
    try:
        wait_until(lambda: answers(f"{url}/ping"), time.monotonic() + timeout_s, process)
    except NotUp as exc:
        why = (f"exited with {exc.returncode}" if exc.returncode is not None
               else f"not healthy after {timeout_s:g} s")
        raise EndpointFailedToStart(f"model server {why}:\n{log_path.read_text()[-4000:]}") from None


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
def running_server(command: Sequence[str], url: str, *, env: Mapping[str, str] | None = None,
                   cwd: Path = REPO_ROOT, log_path: Path | None = None,
                   startup_timeout_s: float = 120.0) -> Iterator[subprocess.Popen]:
    """Run a model-server command until its `/ping` answers, yield the process, stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="model-serve-") as scratch:
        log_path = log_path or Path(scratch) / "serve.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                       env={**os.environ, **(env or {})})
        try:
            wait_until_healthy(url, process, startup_timeout_s, log_path)
            yield process
        finally:
            stop(process)


@contextmanager
def running_endpoint(model_dir: Path, *, endpoint_name: str | None = None, endpoints: Mapping[str, Path] | None = None,
                     host: str = "127.0.0.1", port: int | None = None, args: Sequence[str] = (),
                     env: Mapping[str, str] | None = None, log_path: Path | None = None,
                     startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Yield the base URL of a healthy `python -m model.serving.server`; its JSON log goes to `log_path` (temp by
    default)."""
    port = port or unused_port(host)
    url = f"http://{host}:{port}"
    command = serve_command(model_dir, host, port, endpoint_name, endpoints, args)
    with running_server(command, url, env=env, log_path=log_path, startup_timeout_s=startup_timeout_s):
        yield url
