"""Arguments against a tool's schema: one field violation per problem, named by path."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from jsonschema import Draft202012Validator

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import FailedPrecondition, InvalidArgument
from services.tool.schema import MAX_VIOLATIONS, arguments_of, check_arguments

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "items": {"type": "array", "items": {"type": "integer"}},
        "options": {
            "type": "object",
            "properties": {"units": {"enum": ["metric", "imperial"]}},
            "required": ["units"],
        },
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
VALIDATOR = Draft202012Validator(SCHEMA)


def _violations(arguments: dict[str, Any], validator: Draft202012Validator = VALIDATOR) -> dict:
    with pytest.raises(InvalidArgument) as caught:
        check_arguments(validator, arguments, "tools/t")
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_TOOL_ARGUMENTS_INVALID
    fields = [v.field for v in caught.value.violations]
    assert len(fields) == len(set(fields)), "one violation per problem"
    return {v.field: v.description for v in caught.value.violations}


def test_valid_arguments_pass() -> None:
    check_arguments(VALIDATOR, {"city": "Oslo", "days": 3, "items": [1, 2]}, "tools/t")


def test_each_missing_required_property_is_named() -> None:
    assert _violations({}) == {
        "arguments.city": "is a required property",
        "arguments.days": "is a required property",
    }


def test_every_problem_is_reported_with_its_path() -> None:
    found = _violations(
        {
            "city": "",
            "days": 99,
            "items": [1, 2, "three"],
            "options": {},
            "colour": "red",
            "size": 2,
        }
    )
    assert set(found) == {
        "arguments.city",
        "arguments.days",
        "arguments.items.2",
        "arguments.options.units",
        "arguments.colour",
        "arguments.size",
    }
    assert found["arguments.days"] == "99 is greater than the maximum of 14"
    assert found["arguments.items.2"] == "'three' is not of type 'integer'"
    assert found["arguments.options.units"] == "is a required property"
    assert found["arguments.colour"] == "is not a parameter of this tool"


def test_struct_numbers_that_are_integral_are_integers() -> None:
    struct = struct_pb2.Struct()
    struct.update({"city": "Oslo", "days": 3, "ratio": 0.5, "items": [1, 2.0]})
    arguments = arguments_of(struct)
    assert arguments == {"city": "Oslo", "days": 3, "ratio": 0.5, "items": [1, 2]}
    assert isinstance(arguments["days"], int) and isinstance(arguments["items"][1], int)


def test_violations_are_capped_and_descriptions_short() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}}
    arguments = {f"k{i:02}": "x" * 500 for i in range(40)}
    with pytest.raises(InvalidArgument) as caught:
        check_arguments(Draft202012Validator(schema), arguments, "tools/t")
    assert len(caught.value.violations) == MAX_VIOLATIONS
    assert all(len(v.description) <= 200 for v in caught.value.violations)
    assert "(and 37 more)" in caught.value.message


def test_a_schema_that_cannot_be_evaluated_is_the_tools_fault() -> None:
    broken = Draft202012Validator(
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    )
    with pytest.raises(FailedPrecondition):
        check_arguments(broken, {"a": 1}, "tools/t")
