"""What identifies a cached answer: a hash of everything in a request that changes it.

The canonical form is the upstream `CompleteRequest` without the fields that are set per
attempt (`provider`, `model`: the deployment) or that do not change the answer
(`include_usage`, `user`), serialized deterministically (map fields such as `logit_bias`
and JSON schemas sorted by key), plus the resolved public model name. Two requests
differing in anything else (a message, a sampling parameter, the response format, the
tool choice) get different keys.
"""

from __future__ import annotations

import hashlib

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2

# Bumped whenever the canonical form changes, so old entries are never read as new ones.
KEY_VERSION = 1

_NOT_IN_KEY = ("provider", "model", "include_usage", "user")


def cache_key(request: provider_pb2.CompleteRequest, model: str) -> str:
    """Hex SHA-256 of the canonical request for the public `model` it resolved to."""
    canonical = provider_pb2.CompleteRequest()
    canonical.CopyFrom(request)
    for name in _NOT_IN_KEY:
        canonical.ClearField(name)
    model_bytes = model.encode()
    digest = hashlib.sha256()
    # Length-prefixed: no model name can run into the request's bytes.
    digest.update(f"llmgw-cache-key/v{KEY_VERSION}\n{len(model_bytes)}\n".encode())
    digest.update(model_bytes)
    digest.update(canonical.SerializeToString(deterministic=True))
    return digest.hexdigest()


def cacheable(request: provider_pb2.CompleteRequest) -> bool:
    """Whether the request's answer may be cached at all: never when it offers tools
    (a tool call's answer depends on the world the tools act on)."""
    return not request.tools
