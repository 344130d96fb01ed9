"""A/B routing: which endpoint answers a request, drawn by the MODEL_VARIANTS weights.

Without a client key each request is an independent weighted draw. With one (X-Client-Id; the API key too
when STICKY_BY_API_KEY=true) the draw is a hash of the key, so a client sees one variant for as long as the
weights stay the same. The variants are sorted by name and each owns a slice of [0, 1) proportional to its
weight; with two variants, raising a canary's weight only moves clients into it, never out of it. The key
itself is neither stored nor logged.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import ModelSettings, Variant

_HASH_PERSON = b"ab-routing"  # keeps these hashes unrelated to any other hash of the same key
_draws = random.Random()


@dataclass(frozen=True)
class Client:
    """Who sent a request, as far as routing cares; the keys are left out of the repr, so no log shows them."""

    client_id: str | None = field(default=None, repr=False)  # X-Client-Id
    api_key: str | None = field(default=None, repr=False)  # the API Gateway key the request came with


def route(settings: ModelSettings, client: Client) -> str | None:
    """The endpoint for this client's request: an A/B draw over MODEL_VARIANTS, else ENDPOINT_NAME."""
    if not settings.variants:
        return settings.endpoint_name
    key = client.client_id or (client.api_key if settings.sticky_by_api_key else None)
    return choose_endpoint(settings.variants, key)


def choose_endpoint(variants: Sequence[Variant], client_key: str | None = None,
                    rng: random.Random = _draws) -> str:
    """The endpoint for one request among non-empty, validated variants (config.parse_model_variants)."""
    if len(variants) == 1:
        return variants[0].endpoint_name
    point = sticky_point(client_key) if client_key is not None else rng.random()
    return endpoint_at(variants, point)


def sticky_point(client_key: str) -> float:
    """The client's fixed place in [0, 1): 64 bits of a keyed BLAKE2b hash of the key."""
    digest = hashlib.blake2b(client_key.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    return int.from_bytes(digest, "big") / 2**64


def endpoint_at(variants: Sequence[Variant], point: float) -> str:
    """The variant whose slice of [0, 1) holds `point`; slices follow the given order, sized by weight."""
    total = sum(v.weight for v in variants)
    cumulative = 0.0
    for variant in variants:
        cumulative += variant.weight / total
        if point < cumulative:
            return variant.endpoint_name
    return next(v.endpoint_name for v in reversed(variants) if v.weight > 0)  # rounding left `point` past the end
