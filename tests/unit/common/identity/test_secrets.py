"""Key format, parsing of hostile input, salted digests."""

from __future__ import annotations

import pytest

from services.common.identity import secrets


def test_a_new_key_parses_back_into_its_parts() -> None:
    key_id, secret = secrets.new_key_id(), secrets.new_secret()
    token = secrets.format_key(key_id, secret)
    parsed = secrets.parse_key(token)
    assert parsed == secrets.ParsedKey(key_id, secret)
    assert parsed.prefix == f"llmgw_{key_id}"
    assert token.startswith(parsed.prefix + "_")


def test_secrets_are_32_random_bytes_and_key_ids_valid_resource_ids() -> None:
    ids = {secrets.new_key_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 12 and i[0].isalpha() and i.isalnum() and i.islower() for i in ids)
    assert len({secrets.new_secret() for _ in range(200)}) == 200
    assert len(secrets.new_secret()) == 43


def test_a_secret_with_underscores_still_parses() -> None:
    secret = "_" * 10 + "a-" * 16 + "b"
    assert secrets.parse_key(secrets.format_key("abcdefghijk1", secret)) is not None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "llmgw_",
        "Bearer llmgw_abcdefghijk1_" + "a" * 43,
        "llmgw_abcdefghijk1_" + "a" * 42,
        "llmgw_abcdefghijk1_" + "a" * 44,
        "llmgw_abcdefghijk1-" + "a" * 43,
        "llmgw_Abcdefghijk1_" + "a" * 43,
        "llmgw_1bcdefghijk1_" + "a" * 43,
        "llmgw_abcdefghijk1_" + "a" * 42 + "=",
        "llmgw_abcdefghijk1_" + "a" * 42 + "é",
        "xxxxx_abcdefghijk1_" + "a" * 43,
        None,
        12,
    ],
)
def test_malformed_keys_are_none_never_an_exception(token: object) -> None:
    assert secrets.parse_key(token) is None  # type: ignore[arg-type]


def test_digest_is_salted_and_checked() -> None:
    secret = secrets.new_secret()
    salt_a, salt_b = secrets.new_salt(), secrets.new_salt()
    assert secrets.digest(salt_a, secret) != secrets.digest(salt_b, secret)
    assert secrets.matches(salt_a, secrets.digest(salt_a, secret), secret)
    assert not secrets.matches(salt_a, secrets.digest(salt_a, secret), secret[:-1] + "x")
    assert not secrets.matches(salt_b, secrets.digest(salt_a, secret), secret)
