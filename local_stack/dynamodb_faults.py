"""moto's DynamoDB behind a fault-injecting proxy: throttling and outages for `local_stack.orchestrator --faults`.

    python -m local_stack.dynamodb_faults [--host 127.0.0.1] [--port 8001]

An outage closes the port while moto keeps the table behind the proxy, so records written before it are still there
to reconcile. Local only: the API reaches it like any DynamoDB endpoint (docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import math
import os
import random
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from moto.server import ThreadedMotoServer

from local_stack.dynamodb import faster_sorts, faster_transactions, kept_tables
from local_stack.table_store import StoreError

log = logging.getLogger("dynamodb_faults")

ADMIN_PATH = "/_faults"
OUTAGE_PATH = "/_faults/outage"
MAX_OUTAGE_S = 600.0
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
ERROR_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
AMZ_JSON = "application/x-amz-json-1.0"
# DynamoDB's own messages for its three throttling errors.
THROTTLE_ERRORS = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
                                              "exceeded. Consider increasing your provisioning level with the "
                                              "UpdateTable API.",
    "ThrottlingException": "Throughput exceeds the current capacity of your table or index. DynamoDB is "
                           "automatically scaling your table or index so please try again shortly.",
    "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account. Please contact "
                            "AWS Support at https://aws.amazon.com/support request a limit increase",
}
ENV_VARS = {"throttle_rate": "DYNAMODB_FAULT_THROTTLE_RATE", "throttle_error": "DYNAMODB_FAULT_THROTTLE_ERROR"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "content-length"}


class DynamoDBFaultConfigError(ValueError):
    """A fault setting the proxy cannot use; the message names the setting."""


@dataclass(frozen=True)
class TableFaults:
    """The throttling in force; the defaults are a healthy table."""

    throttle_rate: float = 0.0
    throttle_error: str = "ProvisionedThroughputExceededException"

    def __post_init__(self) -> None:
        rate = self.throttle_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) \
                or not 0 <= rate <= 1:
            raise DynamoDBFaultConfigError(f"throttle_rate must be a number from 0 to 1, got {rate!r}")
        if self.throttle_error not in THROTTLE_ERRORS:
            raise DynamoDBFaultConfigError(f"throttle_error must be one of {', '.join(THROTTLE_ERRORS)}, "
                                   f"got {self.throttle_error!r}")

    @classmethod
    def from_mapping(cls, values: Any) -> TableFaults:
        """From a JSON object; fields left out take their healthy default."""
        if not isinstance(values, dict):
            raise DynamoDBFaultConfigError("faults must be a JSON object")
        unknown, known = sorted(set(values) - set(ENV_VARS)), ", ".join(ENV_VARS)
        if unknown:
            raise DynamoDBFaultConfigError(f"unknown fault setting(s) {', '.join(unknown)}; known: {known}")
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TableFaults:
        rate, error = (env.get(variable, "").strip() for variable in ENV_VARS.values())
        try:
            return cls(throttle_rate=float(rate) if rate else 0.0, throttle_error=error or cls.throttle_error)
        except ValueError as exc:  # float() of a non-number, or a DynamoDBFaultConfigError
            raise DynamoDBFaultConfigError(f"DYNAMODB_FAULT_THROTTLE_RATE={rate!r}, "
                                           f"DYNAMODB_FAULT_THROTTLE_ERROR={error!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def outage_seconds(values: Any) -> float:
    """The `seconds` of an outage request: a positive number up to MAX_OUTAGE_S."""
    seconds = values.get("seconds") if isinstance(values, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_OUTAGE_S:
        raise DynamoDBFaultConfigError(f'expected {{"seconds": S}} with 0 < S <= {MAX_OUTAGE_S:g}, got {values!r}')
    return float(seconds)


class _ProxyServer(ThreadingHTTPServer):
    """A threaded server that can cut every connection it holds (what a stopped server does to its clients)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        super().__init__(address, _ProxyHandler)
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # not a connection an outage cut or a client left
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall between
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        with suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        proxy = self.server.proxy
        if path == ADMIN_PATH:
            self._admin(body)
        elif path == OUTAGE_PATH and self.command == "POST":
            self._outage(body)
        elif self.headers.get("X-Amz-Target", "").startswith(DYNAMODB_TARGET_PREFIX) and proxy.throttles():
            error = proxy.faults.throttle_error
            self._send(400, {"__type": ERROR_TYPE_PREFIX + error, "message": THROTTLE_ERRORS[error]}, AMZ_JSON)
        else:
            self._forward(body)

    def _admin(self, body: bytes) -> None:
        proxy = self.server.proxy
        try:
            if self.command == "PUT":
                proxy.faults = TableFaults.from_mapping(json.loads(body or b"null"))
            elif self.command == "DELETE":
                proxy.faults = TableFaults()
            elif self.command != "GET":
                self._send(405, {"message": f"{self.command} {ADMIN_PATH}: use GET, PUT or DELETE"})
                return
        except ValueError as exc:  # invalid JSON or a DynamoDBFaultConfigError
            self._send(400, {"message": str(exc)})
            return
        if self.command != "GET":
            log.warning("faults set: %s", proxy.faults.to_dict())
        self._send(200, proxy.faults.to_dict())

    def _outage(self, body: bytes) -> None:
        try:
            seconds = outage_seconds(json.loads(body or b"null"))
        except ValueError as exc:
            self._send(400, {"message": str(exc)})
            return
        self.close_connection = True
        self._send(202, {"outage_s": seconds})
        self.server.proxy.begin_outage(seconds)

    def _forward(self, body: bytes) -> None:
        """Relay the request to moto; a stale keep-alive connection to moto gets one retry on a fresh one."""
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        answer = self._relay(body, headers) or self._relay(body, headers)
        if answer is None:
            self._send(502, {"message": "moto did not answer the fault proxy"})
            return
        status, response_headers, payload = answer
        self.send_response(status)
        for name, value in response_headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._write(payload)

    def _relay(self, body: bytes, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """One round trip to moto on this connection's own upstream connection; None when it fails."""
        proxy = self.server.proxy
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
        try:
            self._upstream.request(self.command, self.path, body=body, headers=headers)
            response = self._upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException):
            self._upstream.close()
            self._upstream = None
            return None

    def _send(self, status: int, body: dict[str, Any], content_type: str = "application/json") -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self._write(payload)

    def _write(self, payload: bytes) -> None:
        if self.command != "HEAD":
            with suppress(OSError):  # the connection was cut by an outage, or the client left
                self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per DynamoDB call would bury the fault log


class FaultProxy:
    """Forwards HTTP to `upstream` on (host, port), except what the faults answer or refuse."""

    def __init__(self, host: str, port: int, upstream: str, faults: TableFaults | None = None,
                 rng: random.Random | None = None) -> None:
        target = urlsplit(upstream)
        self.host, self.port = host, port
        self.upstream_host, self.upstream_port = target.hostname or "127.0.0.1", target.port or 80
        self.faults = faults or TableFaults()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._server: _ProxyServer | None = None
        self._stopped = False
        self._outage_over = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def throttles(self) -> bool:
        rate = self.faults.throttle_rate
        return rate > 0 and self._rng.random() < rate

    def start(self) -> None:
        """Bind and serve; port 0 picks a free port, kept across outages."""
        server = _ProxyServer((self.host, self.port), self)
        self.port = server.server_address[1]
        self._serve(server)

    def _serve(self, server: _ProxyServer) -> None:
        with self._lock:
            if self._stopped:
                server.server_close()
                return
            self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="dynamodb-fault-proxy").start()

    def _close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()

    def begin_outage(self, seconds: float) -> None:
        """Close the port and cut every connection now; open the port again after `seconds` (or at `end_outage`)."""
        self._outage_over.clear()
        threading.Thread(target=self._outage, args=(seconds,), daemon=True, name="dynamodb-outage").start()

    def end_outage(self) -> None:
        """Open the port again now: a test holds an outage for exactly as long as it needs, whatever the clock."""
        self._outage_over.set()

    def _outage(self, seconds: float) -> None:
        log.warning("outage: port %d closed for %g s", self.port, seconds)
        self._close()
        self._outage_over.wait(seconds)
        self._serve(_ProxyServer((self.host, self.port), self))
        log.warning("outage over: port %d open again", self.port)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="where the API's AWS_ENDPOINT_URL_DYNAMODB points")
    args = parser.parse_args(argv)
    try:
        args.faults = TableFaults.from_env(os.environ)
    except DynamoDBFaultConfigError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    # The same moto as the stack without faults (local_stack.dynamodb): with LOCAL_DYNAMODB_DATABASE, the
    # earlier runs' tables back and this run's changes kept.
    try:
        with faster_transactions(), faster_sorts(), kept_tables():
            serve_behind_proxy(args, stopping)
    except StoreError as exc:
        sys.exit(f"local DynamoDB: {exc}")


def serve_behind_proxy(args: argparse.Namespace, stopping: threading.Event) -> None:
    """This process's moto on a free port, the fault proxy on the stack's, until `stopping` is set."""
    moto = ThreadedMotoServer(ip_address=args.host, port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    proxy = FaultProxy(args.host, args.port, f"http://{moto_host}:{moto_port}", args.faults)
    proxy.start()
    log.info("moto at http://%s:%d behind the fault proxy at %s, faults %s", moto_host, moto_port, proxy.url,
             args.faults.to_dict())
    while not stopping.wait(1.0):
        pass
    proxy.stop()
    moto.stop()


if __name__ == "__main__":
    main()
