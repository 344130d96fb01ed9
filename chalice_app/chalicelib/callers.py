"""Who is calling, for provenance and for whose traffic a caller may read.

On AWS the caller is the API key API Gateway checked (`requestContext.identity.apiKeyId`: an id, never the secret
key); a request without one is refused (403), whatever headers it carries. Only a stage without keys running
outside Lambda (`chalice local`) has no key ids, so there the client's own X-Client-Id stands in for one
(config.client_id_is_identity). Operators (OPERATOR_KEY_IDS) read every client's transactions; any other caller
reads only its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import access_settings, client_id_is_identity
from .errors import ApiError
from .routing import Client


@dataclass(frozen=True)
class Caller:
    key_id: str | None  # the API key id; on `chalice local` without keys X-Client-Id, None when that is absent too
    operator: bool

    def may_read(self, owner_key_id: str | None) -> bool:
        """An operator reads every record; a client only those it sent."""
        return self.operator or (self.key_id is not None and self.key_id == owner_key_id)

    def require_operator(self) -> None:
        if not self.operator:
            raise ApiError(403, "forbidden", "this route is for operator keys (OPERATOR_KEY_IDS)")

    def require_identity(self) -> str:
        """The key id of a caller that is not an operator: reading "its own" needs one."""
        if self.key_id is None:
            raise ApiError(403, "forbidden", "send your API key (or X-Client-Id on a stage without keys) to read "
                                             "your transactions")
        return self.key_id


def caller(client: Client, context: Mapping[str, Any]) -> Caller:
    """The caller of a request whose client (X-Client-Id, API key) validation.client has read; a 403 when the
    request has no key id where key ids are the only identity (a keyed stage, or any stage inside Lambda)."""
    identity = context.get("identity") or {}
    key_id = identity.get("apiKeyId")
    if key_id is None:
        if not client_id_is_identity():
            raise ApiError(403, "forbidden", "this request carries no API key id; send your API key (x-api-key)")
        key_id = client.client_id
    settings = access_settings()
    return Caller(key_id=key_id, operator=settings.everyone_is_operator or key_id in settings.operator_key_ids)
