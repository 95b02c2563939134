"""Log redaction: secrets never reach a log line, and the quick check that skips clean
text changes no result."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import logs


def _every_pattern(text: str) -> str:
    """What redact gave before the quick check: every pattern applied, always."""
    for pattern in logs._SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + logs.REDACTED, text)
        else:
            text = pattern.sub(logs.REDACTED, text)
    return text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("upstream said: invalid key sk-proj-abcdefgh123", "upstream said: invalid key "),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: "),
        ("BEARER abcdefghijklmnop", ""),
        ("key llmgw_0123456789abcdef", "key "),
        ("https://x.example/v1?API_KEY=hunter2hunter2&a=1", "https://x.example/v1?API_KEY="),
        ('{"Password": "pa55word!"}', '{"Password": "'),
        ("X-Api-Key: s3cr3tvalue", "X-Api-Key: "),
        ("\u017fecret=abcdef", "\u017fecret="),
    ],
)
def test_secrets_are_redacted(text: str, kept: str) -> None:
    out = logs.redact(text)
    assert out.startswith(kept)
    assert logs.REDACTED in out
    assert out == _every_pattern(text)


def test_clean_text_is_returned_unchanged() -> None:
    text = "/llmgw.router.v1.RouterService/CreateChatCompletion"
    assert logs.redact(text) is text


_PIECES = st.sampled_from(
    [
        "sk-",
        "SK-",
        "Sk-",
        "bearer ",
        "Bearer\t",
        "llmgw_",
        "LLMGW_",
        "api_key",
        "Api-Key",
        "apikey=",
        "x-api-key:",
        "token",
        "TOKEN=",
        "secret:",
        "Password",
        "=",
        ":",
        '"',
        "'",
        " ",
        "&",
        "abcdefghij",
        "0123456789",
        "_-~+/.",
        "é",
        "\n",
        # Characters IGNORECASE matching folds to a pattern's letters.
        "\u017fecret",
        "pa\u017f\u017fword",
        "\u212aey",
        "api_\u212aey",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=12).map("".join))
def test_the_quick_check_changes_no_result(text: str) -> None:
    assert logs.redact(text) == _every_pattern(text)
