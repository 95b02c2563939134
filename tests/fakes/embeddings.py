"""What the fakes' embedding endpoints share: deterministic vectors and the request
checks every protocol makes the same way.

A vector is derived from a hash of its text alone, so a test can compute the vector a
fake returns (`vector_for`) and compare it with what the gateway passed on. Vectors are
short (`DEFAULT_DIMENSIONS`) to keep requests and assertions small.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Sequence
from typing import Any

from tests.fakes.behaviour import Behaviour

DEFAULT_DIMENSIONS = 8
# Largest `dimensions` the fakes accept, as a real model has a fixed maximum.
MAX_DIMENSIONS = 256


def vector_for(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit-length vector the fakes answer for `text`; every component is exactly
    representable as a float32, so base64 and float answers decode to equal lists."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for offset in range(0, len(digest), 2):
            (raw,) = struct.unpack_from("<H", digest, offset)
            values.append(raw / 32768.0 - 1.0)
        counter += 1
    values = normalised(values[:dimensions])
    # Round-trip through float32 so the JSON floats equal what base64 carries.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *values)))


def base64_vector(values: Sequence[float]) -> str:
    """Little-endian float32 components, base64: OpenAI's `encoding_format=base64`."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def normalised(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def input_texts(value: Any) -> list[str] | None:
    """The texts of an `input` field (a string or a non-empty list of strings), else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def input_tokens(texts: Sequence[str], behaviour: Behaviour) -> int:
    """The scripted input count (`usage[0]`), else the words in the texts (at least 1)."""
    if behaviour.usage is not None:
        return behaviour.usage[0]
    return max(sum(len(text.split()) for text in texts), 1)
