"""Principal assertions and the edge token: what a verifier accepts, and everything it
refuses (another secret, a changed byte, an expired or over-long lifetime, garbage)."""

from __future__ import annotations

import base64
import json

import pytest
from prometheus_client import REGISTRY

from services.common.errors import Unauthenticated
from services.common.identity.assertion import (
    CLOCK_SKEW_SECONDS,
    INVALID,
    MAX_ASSERTION_LENGTH,
    MAX_TTL_SECONDS,
    MIN_SECRET_BYTES,
    Assertion,
    InternalKeys,
    check_secret,
    edge_token,
)

SECRET = "a-test-internal-secret-of-32-bytes-or-more"
OTHER_SECRET = "another-internal-secret-of-32-bytes-or-more"
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(clock: Clock) -> InternalKeys:
    return InternalKeys(SECRET, "router-1", clock=clock)


def mint(keys: InternalKeys, timeout: float | None = 10.0, **fields: str) -> str:
    values = {
        "consumer": "consumers/alice",
        "key_name": "consumers/alice/keys/k1",
        "address": "203.0.113.9",
        "request_id": "req-1",
    }
    values.update(fields)
    return keys.mint(timeout=timeout, **values)


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("llmgw_auth_failures_total", {"reason": reason}) or 0.0


def test_a_minted_assertion_verifies_to_what_it_vouches_for(keys: InternalKeys) -> None:
    assert keys.verify(mint(keys)) == Assertion(
        consumer="consumers/alice",
        key_name="consumers/alice/keys/k1",
        address="203.0.113.9",
        request_id="req-1",
        expires=NOW + 10 + CLOCK_SKEW_SECONDS,
        issuer="router-1",
    )


def test_every_replica_with_the_secret_verifies_every_other(clock: Clock) -> None:
    minted = mint(InternalKeys(SECRET, "router-1", clock=clock))
    assert InternalKeys(SECRET, "session-2", clock=clock).verify(minted).issuer == "router-1"


def test_an_assertion_of_another_secret_is_refused(clock: Clock, keys: InternalKeys) -> None:
    foreign = mint(InternalKeys(OTHER_SECRET, "router-1", clock=clock))
    before = failures("assertion_invalid")
    with pytest.raises(Unauthenticated) as caught:
        keys.verify(foreign)
    assert str(caught.value) == INVALID
    assert failures("assertion_invalid") == before + 1


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


def _with_payload(token: str, payload: dict[str, object]) -> str:
    version, _, signature = token.split(".")
    raw = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{version}.{raw}.{signature}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("c", "consumers/mallory"),  # someone else
        ("c", "consumers/_admin"),  # the bootstrap admin
        ("a", "10.0.0.1"),  # an address inside someone's allow-list
        ("e", int((NOW + 3600) * 1000)),  # a longer life
    ],
)
def test_changing_any_field_breaks_the_signature(
    keys: InternalKeys, field: str, value: object
) -> None:
    token = mint(keys)
    forged = _with_payload(token, {**_payload(token), field: value})
    with pytest.raises(Unauthenticated):
        keys.verify(forged)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1..",
        "v2.e30.AAAA",
        "v1.e30",
        "v1.!!!.???",
        "v1.e30." + "A" * 43,
        "v1.é.é",
        "x" * (MAX_ASSERTION_LENGTH + 1),
    ],
)
def test_garbage_is_refused_without_raising_anything_else(keys: InternalKeys, token: str) -> None:
    with pytest.raises(Unauthenticated, match="not valid"):
        keys.verify(token)


def test_a_truncated_signature_is_refused(keys: InternalKeys) -> None:
    token = mint(keys)
    with pytest.raises(Unauthenticated):
        keys.verify(token[:-1])


def test_an_assertion_lives_as_long_as_its_call_plus_the_clock_skew(
    keys: InternalKeys, clock: Clock
) -> None:
    token = mint(keys, timeout=5.0)
    clock.now = NOW + 5 + CLOCK_SKEW_SECONDS - 0.01
    keys.verify(token)
    clock.now = NOW + 5 + CLOCK_SKEW_SECONDS
    before = failures("assertion_expired")
    with pytest.raises(Unauthenticated, match="not valid"):
        keys.verify(token)
    assert failures("assertion_expired") == before + 1


@pytest.mark.parametrize("timeout", [None, 3600.0])
def test_an_assertion_never_lives_longer_than_the_maximum(
    keys: InternalKeys, clock: Clock, timeout: float | None
) -> None:
    token = mint(keys, timeout=timeout)
    assert keys.verify(token).expires == NOW + MAX_TTL_SECONDS
    clock.now = NOW + MAX_TTL_SECONDS
    with pytest.raises(Unauthenticated):
        keys.verify(token)


def test_an_assertion_expiring_beyond_the_maximum_is_refused(clock: Clock) -> None:
    # Minted by a holder of the secret whose clock runs a minute ahead.
    ahead = Clock()
    ahead.now = NOW + 60
    token = mint(InternalKeys(SECRET, "router-1", clock=ahead))
    with pytest.raises(Unauthenticated):
        InternalKeys(SECRET, "session-1", clock=clock).verify(token)


def test_a_deadline_already_passed_still_mints_a_short_valid_assertion(
    keys: InternalKeys,
) -> None:
    assert keys.verify(mint(keys, timeout=-1.0)).expires == NOW + CLOCK_SKEW_SECONDS


def test_the_edge_token_is_derived_and_compared(keys: InternalKeys) -> None:
    token = edge_token(SECRET)
    assert keys.edge_token_matches(token)
    assert not keys.edge_token_matches(edge_token(OTHER_SECRET))
    assert not keys.edge_token_matches(token[:-1])
    assert not keys.edge_token_matches("")
    assert not keys.edge_token_matches("é" * len(token))
    # Neither the secret nor anything that signs appears in it.
    assert SECRET not in token and len(token) == 64


def test_the_edge_token_cannot_sign_an_assertion(clock: Clock, keys: InternalKeys) -> None:
    # Whoever holds Envoy's environment holds the edge token, not the signing key.
    forged = mint(InternalKeys(edge_token(SECRET), "envoy", clock=clock))
    with pytest.raises(Unauthenticated):
        keys.verify(forged)


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    short = "s" * (MIN_SECRET_BYTES - 1)
    with pytest.raises(ValueError) as caught:
        check_secret(short)
    assert short not in str(caught.value)
    with pytest.raises(ValueError):
        InternalKeys(short, "router-1")
    check_secret("é" * (MIN_SECRET_BYTES // 2))  # bytes count, not characters
