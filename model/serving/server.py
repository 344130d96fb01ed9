"""A SageMaker-compatible model server: the container contract and the SageMaker Runtime API in one process.

    python -m model.serving.server --model-dir artifacts/model [--endpoint NAME=DIR ...] [--runtime auto]

`GET /ping` and `POST /invocations` (the container contract), `POST /endpoints/{name}/invocations` (the Runtime
API) with AWS's error shapes, so unchanged boto3 code gets the same answers offline (docs/serving.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.artifact import read_metadata
from model.runtime import AUTO, RUNTIMES, Predictor, available_cpus, load_predictor, resolve_runtime
from model.serving.faults import (
    NOT_FOUND,
    NOT_READY,
    THROTTLED,
    UNAVAILABLE,
    EndpointFaults,
    FaultConfigError,
    FaultInjector,
    admin_routes,
    fault_variables_set,
)
from model.serving.inference import (
    JSON,
    JSON_LINES,
    InvalidInputError,
    format_response,
    headlines_of,
    input_fn,
    output_fn,
)
from model.serving.json_logging import configure_json_logging
from model.serving.microbatch import BatchResult, MicroBatcher

log = logging.getLogger("model.serving.server")

DEFAULT_ENDPOINT = "news-classifier"
DEFAULT_VARIANT = "AllTraffic"  # the variant name SageMaker gives a single-variant endpoint config
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request limit
LOCAL_ACCOUNT = "123456789012"
# SageMaker's name rule; a copy of devkit.aws_names.SAGEMAKER_NAME, since what ships may not import devkit/.
ENDPOINT_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BATCH_HEADLINES_HEADER = "X-Micro-Batch-Headlines"
BATCH_REQUESTS_HEADER = "X-Micro-Batch-Requests"
ENDPOINT_NOT_FOUND = "Endpoint {name} of account {account} not found."
LISTENING = "listening"  # the log line naming the port the server bound, once it accepts connections
# What SageMaker Runtime answers for a throttled, missing, cold or failing endpoint: (status, error type, message).
SERVICE_FAULT_ERRORS = {
    THROTTLED: (400, "ThrottlingException", "Rate exceeded."),
    NOT_FOUND: (400, "ValidationError", ENDPOINT_NOT_FOUND),
    NOT_READY: (429, "ModelNotReadyException", "Model for endpoint {name} is not ready. Retry the request later."),
    UNAVAILABLE: (503, "ServiceUnavailable", "The service is unavailable. Retry the request later."),
}


@dataclass(frozen=True)
class ServeSettings:
    runtime: str = AUTO
    max_batch: int = 32
    max_wait_ms: float = 0.0
    timeout_s: float = 60.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    threads: int | None = None
    spin_wait: bool = True


@dataclass
class Endpoint:
    """One named model, loaded once, with its own micro-batcher."""

    name: str
    model_dir: Path
    runtime: str
    predictor: Predictor
    batcher: MicroBatcher
    variant: str = DEFAULT_VARIANT


@dataclass
class ModelReply:
    """What the model container answers: the body the runtime API forwards or wraps in a ModelError."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class PayloadTooLargeError(ValueError):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body of {int(declared)} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def container_error(status: int, kind: str, message: str) -> ModelReply:
    """The error body the Hugging Face inference container returns, so clients see one format."""
    return ModelReply(status, json.dumps({"code": status, "type": kind, "message": message}).encode())


async def invoke_model(endpoint: Endpoint, body: bytes, content_type: str, accept: str, timeout_s: float,
                       faults: FaultInjector | None = None) -> ModelReply:
    """Run the handler's input_fn -> (micro-batched) prediction -> output_fn; never raises."""
    try:
        failed_status = await faults.model_fault() if faults is not None else None
        if failed_status is not None:
            return container_error(failed_status, "InjectedFault", "injected model failure (fault injection)")
        data = input_fn(body, content_type)
        result = await predict_headlines(endpoint, headlines_of(data), timeout_s)
        predictor = endpoint.predictor
        prediction = format_response(data, result.probabilities, predictor.labels.names,
                                     predictor.metadata["model_version"])
        payload = output_fn(prediction, accept)
    except InvalidInputError as exc:
        return container_error(400, "InvalidInput", str(exc))
    except TimeoutError:
        return container_error(504, "Timeout", f"no prediction within {timeout_s:g} s")
    except Exception:
        log.exception("prediction failed", extra={"endpoint": endpoint.name})
        return container_error(500, "InternalServerError", "prediction failed; see the model server log")
    return ModelReply(200, payload.encode(), {BATCH_HEADLINES_HEADER: str(result.batch_headlines),
                                              BATCH_REQUESTS_HEADER: str(result.batch_requests),
                                              "Content-Type": JSON_LINES if isinstance(prediction, list) else JSON})


async def predict_headlines(endpoint: Endpoint, headlines: list[str], timeout_s: float) -> BatchResult:
    """The micro-batched prediction; a JSON Lines request whose every line is bad has nothing to run."""
    if not headlines:
        return BatchResult(np.empty((0, len(endpoint.predictor.labels))), 0, 0)
    return await asyncio.wait_for(endpoint.batcher.predict_proba(headlines), timeout_s)


def _reply(reply: ModelReply, extra_headers: Mapping[str, str] | None = None) -> Response:
    return Response(reply.body, reply.status, headers={**reply.headers, **(extra_headers or {})}, media_type=JSON)


# --- container contract -------------------------------------------------------------------------------------------

async def ping(request: Request) -> Response:
    """Healthy once the lifespan has loaded every model (the port is not bound before); says what is served and
    how many requests each endpoint holds (queued or being run)."""
    endpoints: dict[str, Endpoint] = request.app.state.endpoints
    return JSONResponse({"status": "healthy", "endpoints": {
        name: {"model_dir": str(e.model_dir), "runtime": e.runtime, "variant": e.variant,
               "model_version": e.predictor.metadata["model_version"], "waiting_requests": e.batcher.waiting}
        for name, e in endpoints.items()}})


async def invocations(request: Request) -> Response:
    settings: ServeSettings = request.app.state.settings
    endpoint = request.app.state.endpoints[request.app.state.default_endpoint]
    try:
        body = await read_body(request, settings.max_payload_bytes)
    except PayloadTooLargeError as exc:
        return _reply(container_error(413, "PayloadTooLarge", str(exc)))
    return _reply(await invoke_model(endpoint, body, request.headers.get("content-type", ""),
                                     request.headers.get("accept", ""), settings.timeout_s, request.app.state.faults))


# --- SageMaker Runtime API ----------------------------------------------------------------------------------------

def aws_error(status: int, code: str, body: dict[str, Any]) -> Response:
    """An AWS rest-json error: botocore reads the code from `x-amzn-ErrorType` and the fields from the body."""
    return JSONResponse(body, status, headers={"x-amzn-ErrorType": code})


def validation_error(message: str) -> Response:
    return aws_error(400, "ValidationError", {"message": message})


def service_fault_error(fault: str, name: str) -> Response:
    status, code, message = SERVICE_FAULT_ERRORS[fault]
    return aws_error(status, code, {"message": message.format(name=name, account=LOCAL_ACCOUNT)})


def model_error(endpoint: Endpoint, reply: ModelReply) -> Response:
    """What InvokeEndpoint returns when the container answers 4xx/5xx: 424 ModelError wrapping that answer."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint.name}"
    original = reply.body.decode("utf-8", errors="replace")
    kind = "client" if reply.status < 500 else "server"
    message = (f'Received {kind} error ({reply.status}) from primary with message "{original}". '
               f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
               f"#logEventViewer:group={log_group} in account {LOCAL_ACCOUNT} for more information.")
    return aws_error(424, "ModelError", {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL", "Message": message, "OriginalStatusCode": reply.status,
        "OriginalMessage": original,
        "LogStreamArn": f"arn:aws:logs:{region}:{LOCAL_ACCOUNT}:log-group:{log_group}"})


async def runtime_invocations(request: Request) -> Response:
    settings: ServeSettings = request.app.state.settings
    name = request.path_params["name"]
    endpoint: Endpoint | None = request.app.state.endpoints.get(name)
    if endpoint is None:
        return validation_error(ENDPOINT_NOT_FOUND.format(name=name, account=LOCAL_ACCOUNT))
    variant = request.headers.get("x-amzn-sagemaker-target-variant")
    if variant and variant != endpoint.variant:
        return validation_error(f"Variant {variant} not found for endpoint {name}.")
    try:
        body = await read_body(request, settings.max_payload_bytes)
    except PayloadTooLargeError:
        return validation_error(f"Request {request.state.request_id} has oversize body.")
    faults: FaultInjector | None = request.app.state.faults
    fault = faults.service_fault() if faults is not None else None
    if fault is not None:
        return service_fault_error(fault, name)
    reply = await invoke_model(endpoint, body, request.headers.get("content-type", ""),
                               request.headers.get("accept", ""), settings.timeout_s, faults)
    if reply.status >= 400:
        return model_error(endpoint, reply)
    return _reply(reply, {"x-Amzn-Invoked-Production-Variant": endpoint.variant})


# --- application --------------------------------------------------------------------------------------------------

class AccessLog:
    """ASGI middleware: a request id on every response (`x-amzn-RequestId`) and one JSON access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-amzn-RequestId", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            headers = response.get("headers", {})
            log.info("request", extra={
                "request_id": request_id, "method": scope["method"], "path": scope["path"],
                "status": response["status"], "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client": (scope.get("client") or ("", 0))[0], "error_type": headers.get("x-amzn-errortype"),
                "batch_headlines": headers.get(BATCH_HEADLINES_HEADER.lower()),
                "batch_requests": headers.get(BATCH_REQUESTS_HEADER.lower())})


def load_endpoint(name: str, model_dir: Path, settings: ServeSettings) -> Endpoint:
    runtime = resolve_runtime(model_dir, settings.runtime)
    predictor = load_predictor(model_dir, runtime, settings.threads, settings.spin_wait)
    batcher = MicroBatcher(predictor.predict_proba, settings.max_batch, settings.max_wait_ms, name)
    log.info("endpoint loaded", extra={"endpoint": name, "model_dir": str(model_dir), "runtime": runtime,
                                       "model_version": predictor.metadata["model_version"],
                                       "threads": settings.threads or available_cpus()})
    return Endpoint(name, model_dir, runtime, predictor, batcher)


def create_app(model_dirs: Mapping[str, Path], default_endpoint: str, settings: ServeSettings,
               faults: FaultInjector | None = None) -> Starlette:
    """The ASGI app; models load in the lifespan, before the server binds its port.

    `faults` (fault injection, local only) adds the `/_faults` admin route; without it the route does not exist.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for name, model_dir in model_dirs.items():
            app.state.endpoints[name] = load_endpoint(name, model_dir, settings)
            await app.state.endpoints[name].batcher.start()
        yield
        for endpoint in app.state.endpoints.values():
            await endpoint.batcher.stop()

    app = Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{name}/invocations", runtime_invocations, methods=["POST"]),
        *(admin_routes() if faults is not None else []),
    ], lifespan=lifespan)
    app.state.faults = faults
    app.state.endpoints = {}
    app.state.default_endpoint = default_endpoint
    app.state.settings = settings
    app.add_middleware(AccessLog)
    return app


# --- command line -------------------------------------------------------------------------------------------------

def endpoint_name(value: str) -> str:
    if not ENDPOINT_NAME_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid SageMaker endpoint name")
    return value


def named_model_dir(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    return endpoint_name(name), Path(folder)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
    parser.add_argument("--port", type=int, default=int(env.get("SAGEMAKER_BIND_TO_PORT", 8080)))
    parser.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR") or "/opt/ml/model"),
                        help="served by /invocations and as --endpoint-name (default SM_MODEL_DIR or /opt/ml/model)")
    parser.add_argument("--endpoint-name", type=endpoint_name, default=env.get("ENDPOINT_NAME") or DEFAULT_ENDPOINT)
    parser.add_argument("--endpoint", type=named_model_dir, action="append", default=[], metavar="NAME=DIR",
                        help="serve another model folder as endpoint NAME (repeatable)")
    parser.add_argument("--runtime", choices=(AUTO, *RUNTIMES), default=env.get("MODEL_RUNTIME") or AUTO,
                        help="auto: onnx-int8 when the model folder has it, else torch")
    parser.add_argument("--max-batch", type=int, default=int(env.get("MODEL_MAX_BATCH", 32)),
                        help="most headlines per micro-batch")
    parser.add_argument("--max-wait-ms", type=float, default=float(env.get("MODEL_MAX_WAIT_MS", 0)),
                        help="hold a batch open this long for more requests (0: run what is queued at once)")
    parser.add_argument("--timeout-s", type=float, default=float(env.get("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)),
                        help="a request not answered within this gets a 504")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: CPUs available)")
    parser.add_argument("--no-spin-wait", dest="spin_wait", action="store_false",
                        help="idle model threads sleep instead of spinning: for a server sharing its CPUs")
    parser.add_argument("--enable-fault-injection", action="store_true",
                        help="local testing only: apply MODEL_FAULT_* and serve the /_faults admin route")
    args = parser.parse_args(argv)
    args.faults = _initial_faults(parser, args.enable_fault_injection, env)
    args.model_dirs = dict([(args.endpoint_name, args.model_dir), *args.endpoint])
    if len(args.model_dirs) != 1 + len(args.endpoint):
        parser.error("endpoint names must be unique")
    if args.max_batch < 1 or args.max_wait_ms < 0 or args.timeout_s <= 0:
        parser.error("--max-batch must be >= 1, --max-wait-ms >= 0 and --timeout-s > 0")
    for name, model_dir in args.model_dirs.items():
        try:
            read_metadata(model_dir)
        except FileNotFoundError as exc:
            parser.error(f"endpoint {name}: {exc}")
    return args


def _initial_faults(parser: argparse.ArgumentParser, enabled: bool, env: Mapping[str, str]) -> EndpointFaults | None:
    """The MODEL_FAULT_* faults when injection is enabled; set without the flag they are an error, never ignored."""
    if not enabled:
        if fault_variables_set(env):
            parser.error(f"{', '.join(fault_variables_set(env))} set without --enable-fault-injection")
        return None
    try:
        return EndpointFaults.from_env(env)
    except FaultConfigError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    configure_json_logging()
    settings = ServeSettings(args.runtime, args.max_batch, args.max_wait_ms, args.timeout_s, threads=args.threads,
                             spin_wait=args.spin_wait)
    faults = FaultInjector(args.faults) if args.faults is not None else None
    if args.faults is not None:
        log.warning("fault injection enabled", extra={"faults": args.faults.to_dict()})
    app = create_app(args.model_dirs, args.endpoint_name, settings, faults)
    ModelServer(server_config(app, args.host, args.port, args.timeout_s), app.state.endpoints).run()


class ModelServer(uvicorn.Server):
    """uvicorn that logs the port it bound once it listens, and runs the batches it holds as soon as it stops.

    Started with `--port 0` it takes a port the OS picks then and there; whoever started it reads the port from the
    `listening` line (model.tools.local_endpoint). A stopping server accepts no more requests, so a batch held open
    for them (`--max-wait-ms`) would only make the requests in it wait, past the graceful-shutdown limit.
    """

    def __init__(self, config: uvicorn.Config, endpoints: Mapping[str, Endpoint]) -> None:
        super().__init__(config)
        self.endpoints = endpoints  # filled by the app's lifespan

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            log.info(LISTENING, extra={"host": self.config.host, "port": port})

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for endpoint in self.endpoints.values():
            endpoint.batcher.close()
        await super().shutdown(sockets)


def server_config(app: ASGIApp, host: str, port: int, timeout_s: float) -> uvicorn.Config:
    """uvicorn as the container runs it: our own JSON access log, and no websockets, so no import of whichever
    websocket library happens to be installed (the slim image has none)."""
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on", ws="none",
                          timeout_graceful_shutdown=int(timeout_s) + 5)


if __name__ == "__main__":
    main()
