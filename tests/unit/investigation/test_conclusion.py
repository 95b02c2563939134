"""Reading the model's conclusion: fenced, prose-wrapped, mistyped or NaN-bearing JSON."""

from __future__ import annotations

import json

from services.investigation.conclusion import SCHEMA, parse


def test_plain_document() -> None:
    found = parse(
        json.dumps(
            {
                "summary": "s",
                "root_cause": "r",
                "root_cause_evidence": [{"tool_call_id": "c2", "excerpt": "OOMKilled"}],
                "findings": [{"title": "t", "detail": "d", "evidence": []}],
                "recommendations": ["a", "", 3],
                "confidence": 0.7,
            }
        )
    )
    assert found is not None
    assert found.root_cause_evidence[0].tool_call_id == "c2"
    assert found.findings[0].title == "t" and found.recommendations == ("a", "3")
    assert found.confidence == 0.7


def test_fenced_with_prose_nan_and_percent() -> None:
    text = (
        'Here:\n```json\n{"summary": "s", "root_cause": "r", "confidence": NaN, '
        '"findings": [{"title": "x", "evidence": {"tool_call_id": "[c1]", "excerpt": "e"}}]}'
        "\n```"
    )
    found = parse(text)
    assert found is not None and found.confidence is None
    assert found.findings[0].evidence[0].tool_call_id == "c1"
    assert parse('{"summary": "s", "root_cause": "r", "confidence": 85}').confidence == 0.85  # type: ignore[union-attr]


def test_nothing_readable() -> None:
    assert parse("no json here") is None
    assert parse("{broken") is None
    assert parse('{"findings": []}') is None
    assert parse("[1, 2]") is None


def test_bounds() -> None:
    doc = {
        "summary": "x" * 10_000,
        "root_cause": "r",
        "findings": [{"title": f"t{i}"} for i in range(50)],
    }
    found = parse(json.dumps(doc))
    assert found is not None and len(found.summary) == 4000 and len(found.findings) == 20


def test_schema_requires_every_field() -> None:
    assert set(SCHEMA["required"]) == set(SCHEMA["properties"])


def test_an_answer_cut_off_by_its_token_limit_keeps_what_was_whole() -> None:
    whole = json.dumps(
        {
            "summary": "the api {crashes}",
            "root_cause": 'a "quoted" cause',
            "root_cause_evidence": [{"tool_call_id": "c2", "excerpt": "OOMKilled"}],
            "findings": [{"title": "one", "detail": "d", "evidence": []}],
        }
    )
    cut = whole[: whole.index('"findings"') + 30]  # inside the first finding
    found = parse("Here it is: " + cut)
    assert found is not None and found.root_cause == 'a "quoted" cause'
    assert found.summary == "the api {crashes}"
    assert [e.excerpt for e in found.root_cause_evidence] == ["OOMKilled"]
    assert [f.title for f in found.findings] == ["one"]  # its title was whole


def test_prose_after_the_document_is_ignored() -> None:
    found = parse('{"summary": "s", "root_cause": "r"} and {"more": 1}')
    assert found is not None and found.root_cause == "r"


def test_the_schema_bounds_every_string_an_answer_holds() -> None:
    evidence = SCHEMA["properties"]["root_cause_evidence"]
    assert evidence["maxItems"] <= 3 and evidence["items"]["properties"]["excerpt"]["maxLength"]
    assert SCHEMA["properties"]["summary"]["maxLength"] <= 1000
