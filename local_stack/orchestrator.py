"""`make local`: the whole stack offline in one command (moto's DynamoDB, the local endpoint, `chalice local`).

    python -m local_stack.orchestrator [--model-dir artifacts/model] [--variant NAME=DIR:WEIGHT ...] [--faults]
    python -m local_stack.orchestrator --stand-ins-only    # `make stand-ins`: you run `chalice local` yourself

The servers are wired with the variables the AWS SDK reads on AWS too, so the API's code runs unchanged
(docs/local-stack.md).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalice_app.chalicelib import transactions
from chalice_app.chalicelib.config import MODEL_VARIANTS, ConfigError, format_model_variants, settings_problems
from devkit.local_servers import NotUpError, answers, unused_port, wait_until
from devkit.local_stack_state import (
    DATABASE_VARIABLE,
    DYNAMODB_DATABASE,
    FAKE_AWS,
    LOCK_FILE,
    STATE_FILE,
    stage_stand_in_urls,
)
from devkit.repo import REPO_ROOT
from devkit.stages import CHALICE_DIR, stage_environment

CHALICE_BIN = Path(sys.executable).with_name("chalice")
LOCAL_SERVER = "local_stack.chalice_server"  # `chalice local` without the 40 ms Nagle/delayed-ACK stall
LOCAL_DYNAMODB = "local_stack.dynamodb"  # moto without its whole-table copy per TransactWriteItems
DYNAMODB_FAULTS = "local_stack.dynamodb_faults"  # moto behind the fault-injecting proxy (--faults)
STAGE = "local"
CHALICE_LOCAL_PORT = 8000  # `chalice local`'s own default
API_LOG_FILE = "api.log"
STARTUP_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0
EXAMPLE_HEADLINE = "Fed raises interest rates as inflation stays high"
VARIANT_ARGUMENT = re.compile(r"(?P<name>[^=]+)=(?P<dir>.+):(?P<weight>[0-9]*\.?[0-9]+)")


class LocalStackError(RuntimeError):
    """A reason the stack cannot run, worded for the person at the terminal."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: stop everything."""


@dataclass(frozen=True)
class LocalVariant:
    """One A/B arm offline: a model folder served as endpoint `name`, getting `weight` of the traffic."""

    name: str
    model_dir: Path
    weight: float


@dataclass(frozen=True)
class StackConfig:
    model_dir: Path
    runtime: str
    host: str
    api_port: int
    endpoint_port: int
    dynamodb_port: int
    state_dir: Path
    faults: bool = False  # fault injection: the endpoint's /_faults route, moto behind local.dynamodb_faults
    api_log: bool = False  # the API's logs to STATE_DIR/api.log instead of the terminal
    variants: tuple[LocalVariant, ...] = ()  # A/B; empty: --model-dir alone, as the stage's ENDPOINT_NAME
    with_api: bool = True  # False (make stand-ins): moto and the endpoint only, for a `chalice local` of one's own

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    def model_variants(self) -> str:
        """MODEL_VARIANTS for `chalice local`."""
        return format_model_variants({v.name: v.weight for v in self.variants})


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path | None  # None: the service writes to this terminal


def stand_in_urls(config: StackConfig) -> dict[str, str]:
    """The variables that point the AWS SDK at this stack's stand-ins."""
    return {"AWS_ENDPOINT_URL_DYNAMODB": config.url(config.dynamodb_port),
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": config.url(config.endpoint_port)}


def stack_environment(config: StackConfig) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(FAKE_AWS, **stand_in_urls(config), PYTHONUNBUFFERED="1")
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines would drown the API's logs
    if config.variants:
        env[MODEL_VARIANTS] = config.model_variants()
    return env


@contextmanager
def single_instance(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the state directory for the life of the stack."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalStackError(already_running_message(state_dir)) from None
        try:
            yield
        finally:
            (state_dir / STATE_FILE).unlink(missing_ok=True)


def already_running_message(state_dir: Path) -> str:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
        serving = f"API at {state['api_url']}" if state.get("api_url") else f"stand-ins at {state['dynamodb_url']}"
        where = f" (pid {state['pid']}, {serving})"
    except (OSError, ValueError, KeyError):
        where = " (still starting)"
    return (f"a local stack (make local or make stand-ins) is already running{where}. Stop it with Ctrl-C in its "
            f"terminal, or start a second stack with other ports and its own state directory (API_PORT=... "
            f"ENDPOINT_PORT=... DYNAMODB_PORT=... LOCAL_STATE_DIR=...).")


def check_ports_free(config: StackConfig) -> None:
    ports = {"ENDPOINT_PORT": config.endpoint_port, "DYNAMODB_PORT": config.dynamodb_port}
    if config.with_api:
        ports["API_PORT"] = config.api_port
    if len(set(ports.values())) < len(ports):
        raise LocalStackError(f"the ports must differ: {ports}")
    for variable, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((config.host, port))
            except OSError:
                raise LocalStackError(f"port {port} on {config.host} is in use by another program; "
                                      f"choose another with {variable}=...") from None


def check_settings(config: StackConfig) -> None:
    """The API's settings as `chalice local` will see them (the stage's override the process's), before starting."""
    problems = settings_problems({**stack_environment(config), **stage_environment(STAGE)})
    if problems:
        raise LocalStackError(f"the API would refuse its settings: {'; '.join(problems)} "
                              f"(stage {STAGE!r} in chalice_app/.chalice/config.json, or the environment)")


def check_variant_models(variants: tuple[LocalVariant, ...]) -> None:
    """Variants name existing model folders: the stack trains only the default model, never a variant."""
    for variant in variants:
        if not (variant.model_dir / "training.json").is_file():
            raise LocalStackError(f"variant {variant.name}: {variant.model_dir} is not a trained model folder "
                                  "(no training.json); train it with `make train MODEL_DIR=...` first")


def endpoint_models(config: StackConfig) -> list[str]:
    """The local endpoint's model arguments: every variant under its name, else --model-dir as the default."""
    if not config.variants:
        return ["--model-dir", str(config.model_dir.resolve())]
    first, *others = config.variants
    return ["--model-dir", str(first.model_dir.resolve()), "--endpoint-name", first.name,
            *(arg for v in others for arg in ("--endpoint", f"{v.name}={v.model_dir.resolve()}"))]


def ensure_model(model_dir: Path) -> None:
    """Train the embedded default model, as `make train` does, when the folder holds no trained model."""
    if (model_dir / "training.json").is_file():
        return
    print(f"No trained model in {model_dir}: training the embedded default model first (make train).", flush=True)
    command = ["make", "--no-print-directory", "train", f"MODEL_DIR={model_dir}"]
    if subprocess.run(command, cwd=REPO_ROOT).returncode != 0:
        raise LocalStackError(f"training failed; run `make train MODEL_DIR={model_dir}` to see why")


def wait_until_ready(service: Service, url: str, deadline: float) -> None:
    """Poll `url` until it answers 200; fail early, showing the service's log, if the process dies."""
    try:
        wait_until(lambda: answers(url), deadline, service.process, poll_s=0.2)
    except NotUpError as exc:
        if exc.returncode is not None:
            raise LocalStackError(f"{service.name} exited with code {exc.returncode}{_log_tail(service)}") from None
        raise LocalStackError(f"{service.name} did not become ready at {url} within {STARTUP_TIMEOUT_S:g} s"
                              f"{_log_tail(service)}") from None


def _log_tail(service: Service) -> str:
    if service.log_path is None or not service.log_path.is_file():
        return ""
    return f"; the end of {service.log_path}:\n" + service.log_path.read_text(errors="replace")[-3000:]


class Stack:
    """The three services, started together and stopped together."""

    def __init__(self, config: StackConfig, signals: StopSignals) -> None:
        self.config = config
        self.env = stack_environment(config)
        self.signals = signals
        self.services: list[Service] = []

    def _spawn(self, name: str, command: list[str], cwd: Path, log_name: str | None,
               env: Mapping[str, str] | None = None) -> Service:
        """Start a process in its own group and register it before any signal can interrupt (no orphans)."""
        log_path = self.config.state_dir / log_name if log_name else None
        with self.signals.deferred(), open(log_path, "wb") if log_path else nullcontext() as output:
            process = subprocess.Popen(command, cwd=cwd, env={**self.env, **(env or {})}, stdout=output,
                                       stderr=subprocess.STDOUT if output else None, start_new_session=True)
            service = Service(name, process, log_path)
            self.services.append(service)
        return service

    def start(self) -> None:
        """Start all three at once (the model loads while moto starts), then wait for each in turn."""
        config = self.config
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        moto = [sys.executable, "-m", LOCAL_DYNAMODB, "-H", config.host, "-p", str(config.dynamodb_port)]
        if config.faults:
            moto = [sys.executable, "-m", DYNAMODB_FAULTS, "--host", config.host, "--port", str(config.dynamodb_port)]
        database = str((config.state_dir / DYNAMODB_DATABASE).resolve())
        dynamodb = self._spawn("DynamoDB (moto)", moto, REPO_ROOT, "dynamodb.log", {DATABASE_VARIABLE: database})
        endpoint = self._spawn("model endpoint", [sys.executable, "-m", "model.serving.server", "--host", config.host,
                                                  "--port", str(config.endpoint_port), *endpoint_models(config),
                                                  "--runtime", config.runtime,
                                                  "--no-spin-wait",  # its 2 cores are shared with the API and moto
                                                  *(["--enable-fault-injection"] if config.faults else [])],
                               REPO_ROOT, "endpoint.log")
        # No autoreload: this API serves load, chaos and benchmark runs, which a restart would cut, and Chalice's
        # reloader restarts on any file written under chalice_app/ (a report's bytecode too); it also starts its
        # workers by re-running argv, which `python -m` is not. The edit loop with autoreload is `make stand-ins`
        # and a plain `chalice local` (docs/local-stack.md).
        api = None if not config.with_api else self._spawn(
            "chalice local", [sys.executable, "-m", LOCAL_SERVER, "--project-dir", str(CHALICE_DIR), "local",
                              "--stage", STAGE, "--host", config.host, "--port", str(config.api_port),
                              "--no-autoreload"], REPO_ROOT, API_LOG_FILE if config.api_log else None)
        wait_until_ready(dynamodb, f"{config.url(config.dynamodb_port)}/moto-api/", deadline)
        create_table(self.env)
        wait_until_ready(endpoint, f"{config.url(config.endpoint_port)}/ping", deadline)
        if api is not None:
            wait_until_ready(api, f"{config.url(config.api_port)}/health", deadline)

    def watch(self) -> None:
        """Block until a signal arrives; a service that dies stops the stack with its reason."""
        while True:
            for service in self.services:
                if service.process.poll() is not None:
                    raise LocalStackError(f"{service.name} stopped unexpectedly with code "
                                          f"{service.process.returncode}{_log_tail(service)}")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM every process group, newest first; SIGKILL what is still there after the grace period."""
        for service in reversed(self.services):
            _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for service in reversed(self.services):
            try:
                service.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{service.name} ignored SIGTERM for {STOP_GRACE_S:g} s: killed", flush=True)
            _signal_group(service.process, signal.SIGKILL)  # whatever the service left behind in its group
            service.process.wait()

    def state(self) -> dict[str, Any]:
        """What tools read to find this stack; without its own API (make stand-ins) there is no `api_url`."""
        api = {"api_url": self.config.url(self.config.api_port)} if self.config.with_api else {}
        return {"pid": os.getpid(), **api,
                "endpoint_url": self.config.url(self.config.endpoint_port),
                "dynamodb_url": self.config.url(self.config.dynamodb_port),
                "faults": self.config.faults,
                "api_log": str(self.config.state_dir / API_LOG_FILE) if self.config.api_log else None,
                "process_groups": {s.name: s.process.pid for s in self.services}}


class StopSignals:
    """SIGINT and SIGTERM raise `Interrupted`, except while a child is being registered or the stack stops.

    Deferring in Python rather than blocking the signals keeps children free of an inherited signal mask
    (a blocked SIGTERM would make them unstoppable but by SIGKILL).
    """

    def __init__(self) -> None:
        self._deferring = False
        self._pending: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._deferring:
            self._pending = self._pending or name
            return
        raise Interrupted(name)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold the signals during the block; one that arrived is raised when it ends."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._pending:
                raise Interrupted(self._pending)

    def ignore_from_now_on(self) -> None:
        """While stopping: a second Ctrl-C must not cut the clean-up short."""
        self._deferring = True


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def create_table(env: Mapping[str, str]) -> None:
    """Create the stage's table on moto with the API's own code, in the environment the API will see."""
    os.environ.update({**env, **stage_environment(STAGE)})
    try:
        transactions.create_table()
    except PynamoDBException as exc:
        raise LocalStackError(f"could not create the table on moto: {exc}") from exc


def banner(config: StackConfig) -> str:
    api, table = config.url(config.api_port), stage_environment(STAGE).get("TABLE_NAME")
    body = json.dumps({"headline": EXAMPLE_HEADLINE})
    models = (f"A/B {', '.join(f'{v.name}={v.model_dir} ({v.weight:g})' for v in config.variants)}"
              if config.variants else f"model {config.model_dir}")
    api_logs = f"log {config.state_dir / API_LOG_FILE}" if config.api_log else "its logs follow here"
    faults = [f"Fault injection on: {config.url(config.endpoint_port)}/_faults (endpoint) and "
              f"{config.url(config.dynamodb_port)}/_faults (DynamoDB proxy); see the README."] if config.faults else []
    services = [
        f"  endpoint   {config.url(config.endpoint_port)}  log {config.state_dir / 'endpoint.log'}",
        f"  DynamoDB   {config.url(config.dynamodb_port)}  table {table} in moto, kept in "
        f"{config.state_dir / DYNAMODB_DATABASE}; log {config.state_dir / 'dynamodb.log'}",
    ]
    if config.with_api:
        head = [f"Local stack ready ({models}, runtime {config.runtime}):",
                f"  API        {api}  chalice local --stage {STAGE}; {api_logs}", *services]
    else:
        head = [f"Local stand-ins ready ({models}, runtime {config.runtime}):", *services,
                "The API, with autoreload, in another terminal (the venv active):",
                f"  {chalice_local_command(config)}"]
    return "\n".join([
        "",
        *head,
        "Try:",
        f"  curl -s -X POST {api}/classify -H 'Content-Type: application/json' -d '{body}'",
        f"  curl -s {api}/transactions/<request_id from the answer>",
        *faults,
        "Ctrl-C stops everything.",
        "",
    ])


def chalice_local_command(config: StackConfig) -> str:
    """The plain command that reaches these stand-ins; exports only for what the local stage does not name (other
    ports, A/B variants)."""
    variables = {name: url for name, url in stand_in_urls(config).items() if stage_stand_in_urls().get(name) != url}
    if config.variants:
        variables[MODEL_VARIANTS] = config.model_variants()
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in variables.items())
    port = "" if config.api_port == CHALICE_LOCAL_PORT else f" --port {config.api_port}"
    return f"cd chalice_app && {f'export {exports} && ' if exports else ''}chalice local --stage {STAGE}{port}"


def run(config: StackConfig) -> int:
    signals = StopSignals()
    signals.install()
    stack = Stack(config, signals)
    try:
        with single_instance(config.state_dir):
            check_ports_free(config)
            check_settings(config)
            if config.variants:
                check_variant_models(config.variants)
            else:
                ensure_model(config.model_dir)
            try:
                stack.start()
                (config.state_dir / STATE_FILE).write_text(json.dumps(stack.state(), indent=2))
                print(banner(config), flush=True)
                stack.watch()
            finally:
                signals.ignore_from_now_on()
                if stack.services:
                    print("\nStopping the local stack...", flush=True)
                stack.stop()
    except Interrupted:
        return 0
    except LocalStackError as exc:
        print(f"make local: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> StackConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--runtime", default="auto", help="model runtime: auto, torch, onnx or onnx-int8")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=CHALICE_LOCAL_PORT,
                        help="0: a free port (the state file records it)")
    parser.add_argument("--endpoint-port", type=int, default=8080, help="0: a free port")
    parser.add_argument("--dynamodb-port", type=int, default=8001, help="0: a free port")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="lock, state file and service logs (one stack per directory)")
    parser.add_argument("--faults", action="store_true",
                        help="local testing only: fault injection in the endpoint and a DynamoDB fault proxy")
    parser.add_argument("--stand-ins-only", action="store_true",
                        help="moto and the endpoint only (make stand-ins); the banner says how to run `chalice "
                             "local` against them, on --api-port")
    parser.add_argument("--api-log", action="store_true",
                        help=f"the API's logs to STATE_DIR/{API_LOG_FILE} instead of this terminal")
    parser.add_argument("--variant", type=local_variant, action="append", default=[], metavar="NAME=DIR:WEIGHT",
                        help="A/B: serve model folder DIR as endpoint NAME with this routing weight (repeatable; "
                             "replaces --model-dir)")
    args = parser.parse_args(argv)
    api_port, endpoint_port, dynamodb_port = (port or unused_port(args.host)
                                              for port in (args.api_port, args.endpoint_port, args.dynamodb_port))
    config = StackConfig(model_dir=args.model_dir, runtime=args.runtime, host=args.host, api_port=api_port,
                         endpoint_port=endpoint_port, dynamodb_port=dynamodb_port,
                         state_dir=args.state_dir, faults=args.faults, api_log=args.api_log,
                         variants=tuple(args.variant), with_api=not args.stand_ins_only)
    names = [v.name for v in config.variants]
    if len(set(names)) < len(names):
        parser.error(f"--variant: endpoint names must be unique, got {', '.join(names)}")
    if config.variants:
        try:
            config.model_variants()
        except ConfigError as exc:
            parser.error(f"--variant: {exc}")
    return config


def local_variant(value: str) -> LocalVariant:
    """NAME=DIR:WEIGHT; the weight follows the last colon, so DIR may hold colons."""
    match = VARIANT_ARGUMENT.fullmatch(value)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR:WEIGHT (e.g. news-v2=artifacts/model-v2:0.1), "
                                         f"not {value!r}")
    return LocalVariant(match["name"], Path(match["dir"]), float(match["weight"]))


def main() -> None:
    if not CHALICE_BIN.is_file():
        sys.exit(f"make local: {CHALICE_BIN} is missing; run `make setup`")
    sys.exit(run(parse_args()))


if __name__ == "__main__":
    main()
