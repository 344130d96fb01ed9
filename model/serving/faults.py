"""Injectable faults for the local endpoint: a slow, failing, throttled or absent SageMaker endpoint, offline.

Opt-in only (`--enable-fault-injection`): the image and SageMaker never pass it. Each fault acts where it happens on
AWS, so boto3 sees the same answers and exceptions (docs/load-testing.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("model.serving.faults")

THROTTLED = "throttled"
NOT_FOUND, NOT_READY, UNAVAILABLE = "not-found", "not-ready", "unavailable"
DOWN_MODES = (NOT_FOUND, NOT_READY, UNAVAILABLE)
MAX_LATENCY_MS = 600_000.0
ADMIN_PATH = "/_faults"
ENV_VARS = {"latency_ms": "MODEL_FAULT_LATENCY_MS", "error_rate": "MODEL_FAULT_ERROR_RATE",
            "error_status": "MODEL_FAULT_ERROR_STATUS", "throttle_rate": "MODEL_FAULT_THROTTLE_RATE",
            "down": "MODEL_FAULT_DOWN"}


class FaultConfigError(ValueError):
    """A fault setting the server cannot use; the message names the setting."""


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise FaultConfigError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")


@dataclass(frozen=True)
class EndpointFaults:
    """The faults in force; the defaults are a healthy endpoint."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    throttle_rate: float = 0.0
    down: str | None = None

    def __post_init__(self) -> None:
        _check_number("latency_ms", self.latency_ms, 0.0, MAX_LATENCY_MS)
        _check_number("error_rate", self.error_rate, 0.0, 1.0)
        _check_number("throttle_rate", self.throttle_rate, 0.0, 1.0)
        if isinstance(self.error_status, bool) or not isinstance(self.error_status, int) \
                or not 400 <= self.error_status <= 599:
            raise FaultConfigError(f"error_status must be an HTTP error status from 400 to 599, "
                                   f"got {self.error_status!r}")
        if self.down is not None and self.down not in DOWN_MODES:
            raise FaultConfigError(f"down must be null or one of {', '.join(DOWN_MODES)}, got {self.down!r}")

    @classmethod
    def from_mapping(cls, values: Any) -> EndpointFaults:
        """From a JSON object; fields left out take their healthy default."""
        if not isinstance(values, dict):
            raise FaultConfigError("faults must be a JSON object")
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EndpointFaults:
        """From the MODEL_FAULT_* variables that are set."""
        values: dict[str, Any] = {}
        for name, variable in ENV_VARS.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[name] = _parse_env_value(name, variable, raw)
                try:
                    cls(**{name: values[name]})  # checked alone, so the message names its variable
                except FaultConfigError as exc:
                    raise FaultConfigError(f"{variable}={raw!r}: {exc}") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_env_value(name: str, variable: str, raw: str) -> Any:
    if name == "down":
        return raw
    try:
        return int(raw) if name == "error_status" else float(raw)
    except ValueError:
        raise FaultConfigError(f"{variable}={raw!r} is not a number") from None


def fault_variables_set(env: Mapping[str, str]) -> list[str]:
    """The MODEL_FAULT_* variables that hold a value: refused when fault injection is not enabled."""
    return [variable for variable in ENV_VARS.values() if env.get(variable, "").strip()]


class FaultInjector:
    """The faults in force and the dice that pick the requests they hit; one per server."""

    def __init__(self, faults: EndpointFaults | None = None, rng: random.Random | None = None) -> None:
        self.faults = faults or EndpointFaults()
        self._rng = rng or random.Random()

    def _hits(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def service_fault(self) -> str | None:
        """What the runtime API's front door answers instead of calling the model: a down mode, THROTTLED or None."""
        faults = self.faults
        if faults.down is not None:
            return faults.down
        return THROTTLED if self._hits(faults.throttle_rate) else None

    async def model_fault(self) -> int | None:
        """Wait out the injected latency; the status the model fails with, or None when it answers."""
        faults = self.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        return faults.error_status if self._hits(faults.error_rate) else None


async def faults_admin(request: Request) -> Response:
    """GET the faults in force, PUT new ones (a JSON object; omitted fields are healthy), DELETE them all."""
    injector: FaultInjector = request.app.state.faults
    if request.method == "PUT":
        try:
            faults = EndpointFaults.from_mapping(json.loads(await request.body()))
        except ValueError as exc:  # invalid JSON, undecodable bytes, or a FaultConfigError
            return JSONResponse({"message": str(exc)}, 400)
        injector.faults = faults
    elif request.method == "DELETE":
        injector.faults = EndpointFaults()
    if request.method != "GET":
        log.warning("faults set", extra={"faults": injector.faults.to_dict()})
    return JSONResponse(injector.faults.to_dict())


def admin_routes() -> list[Route]:
    return [Route(ADMIN_PATH, faults_admin, methods=["GET", "PUT", "DELETE"])]
