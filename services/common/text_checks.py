"""Length limits of the strings callers send, and how error messages quote them.

Every caller string the gateway keeps, forwards or quotes back has a limit, refused
with INVALID_ARGUMENT naming the field and the limit. Descriptions that quote a
caller's value quote at most `QUOTE_CHARS` of it (`shown`), so a refusal is readable
and small whatever was sent (the status itself is bounded too: `status_bounds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.common.status_bounds import clip_chars
from services.common.validation import Violations

# Model names as callers write them: catalogue names, aliases, `prefix` + upstream id
# (the longest real ids, Bedrock ARNs and Hugging Face paths, are well under this).
MAX_MODEL_NAME_CHARS = 256
# Names of things a request refers to (tools, functions, providers, strategies).
MAX_NAME_CHARS = 256
# Ids callers choose that end up in other systems (tool call ids, request ids, users).
MAX_ID_CHARS = 256
# Characters of a caller's value quoted in an error description.
QUOTE_CHARS = 64


def shown(value: str, limit: int = QUOTE_CHARS) -> str:
    """`value` quoted for an error description: `'gpt-4o'`, cut with `…` past `limit`."""
    return f"'{clip_chars(value, limit)}'"


def has_control_characters(value: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def check_text(
    violations: Violations,
    field: str,
    value: str,
    max_chars: int,
    *,
    required: bool = False,
    single_line: bool = False,
) -> bool:
    """Adds a violation (and answers False) when `value` is missing while `required`,
    longer than `max_chars` characters, or holds control characters while
    `single_line`."""
    if not value:
        if required:
            violations.add(field, "is required")
        return not required
    if len(value) > max_chars:
        violations.add(field, f"is {len(value)} characters long; at most {max_chars} allowed")
        return False
    if single_line and has_control_characters(value):
        violations.add(field, "must not contain control characters")
        return False
    return True


def check_count(violations: Violations, field: str, values: Sequence[object], limit: int) -> bool:
    """A violation when a list or map holds more than `limit` entries."""
    if len(values) > limit:
        violations.add(field, f"has {len(values)} entries; at most {limit} allowed")
        return False
    return True


def check_string_map(
    violations: Violations,
    field: str,
    entries: Mapping[str, str],
    *,
    max_entries: int,
    max_key_chars: int,
    max_value_chars: int,
) -> bool:
    """Entry count, then each key and value length; one violation per problem found."""
    if not check_count(violations, field, list(entries), max_entries):
        return False
    ok = True
    for key, value in entries.items():
        if len(key) > max_key_chars:
            violations.add(field, f"key {shown(key)} is longer than {max_key_chars} characters")
            ok = False
        elif len(value) > max_value_chars:
            violations.add(
                f"{field}[{clip_chars(key, QUOTE_CHARS)}]",
                f"is {len(value)} characters long; at most {max_value_chars} allowed",
            )
            ok = False
    return ok
