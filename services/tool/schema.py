"""A call's arguments against its tool's JSON Schema: one field violation per problem.

Field paths name the argument as the caller wrote it: `arguments.city`,
`arguments.items.2`; a missing required property is named itself (`arguments.city`:
"is a required property"), and each unexpected property gets its own violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.common.struct_checks import check_json
from services.common.validation import Violations

# Statuses travel in a trailer (gRPC metadata is limited to a few KiB): the first
# violations are reported, each description cut to a line.
MAX_VIOLATIONS = 20
MAX_DESCRIPTION = 200
_FIELD = "arguments"
_REQUIRED = "is a required property"
# Struct numbers are doubles; integral ones within this bound are sent as integers.
_EXACT_INTEGERS = 2**53


def normalize(value: Any) -> Any:
    """A decoded Struct value with integral numbers as ints (`5.0` -> `5`), so schemas,
    URLs and downstream bodies see the integers the caller meant."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def arguments_of(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The call's arguments as JSON; INVALID_ARGUMENT (TOOL_ARGUMENTS_INVALID) when they
    hold a number JSON cannot (NaN, Infinity) or nest past the shared bound, which no
    schema could judge and no downstream could be sent."""
    problems = Violations()
    if not check_json(problems, _FIELD, struct):
        raise invalid_arguments(problems.items)
    decoded: dict[str, Any] = normalize(json_format.MessageToDict(struct))
    return decoded


def _field(path: Iterable[Any]) -> str:
    return "".join([_FIELD, *(f".{part}" for part in path)])


def _describe(error: ValidationError) -> str:
    text = " ".join(error.message.split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _unexpected(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return sorted(
        key
        for key in instance
        if key not in known and not any(re.search(pattern, key) for pattern in patterns)
    )


def _violations(errors: Iterable[ValidationError]) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    # jsonschema yields one `required` error per missing property, in the schema's order.
    missing: dict[tuple[Any, ...], list[str]] = {}
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            key = (*path, *error.absolute_schema_path)
            if key not in missing:
                missing[key] = [
                    name for name in error.validator_value if name not in error.instance
                ]
            if missing[key]:
                found.append(FieldViolation(_field([*path, missing[key].pop(0)]), _REQUIRED))
                continue
        if (
            error.validator == "additionalProperties"
            and error.validator_value is False
            and isinstance(error.instance, dict)
            and isinstance(error.schema, dict)
        ):
            extras = _unexpected(error.instance, error.schema)
            if extras:
                found.extend(
                    FieldViolation(_field([*path, extra]), "is not a parameter of this tool")
                    for extra in extras
                )
                continue
        found.append(FieldViolation(_field(path), _describe(error)))
    return found


def check_arguments(validator: Draft202012Validator, arguments: dict[str, Any], tool: str) -> None:
    """Raises INVALID_ARGUMENT (TOOL_ARGUMENTS_INVALID) listing every problem."""
    try:
        violations = _violations(validator.iter_errors(arguments))
    except Unresolvable:
        # Registration resolves every reference; only a schema edited behind our back
        # gets here.
        raise FailedPrecondition(
            f"tool '{tool}' has a parameters schema that cannot be evaluated"
        ) from None
    if violations:
        raise invalid_arguments(violations)


def invalid_arguments(violations: Sequence[FieldViolation]) -> InvalidArgument:
    shown = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
    more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
    return InvalidArgument(
        f"invalid arguments: {shown}{more}",
        violations[:MAX_VIOLATIONS],
        reason=error_reason_pb2.ERROR_REASON_TOOL_ARGUMENTS_INVALID,
    )
