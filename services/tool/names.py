"""Resource names `tools/{tool}` and tool ids."""

from __future__ import annotations

import re

from services.common.tool_config import TOOL_ID_PATTERN
from services.common.validation import Violations

RESOURCE_TYPE = "llmgw.tool.v1.Tool"
_TOOL_ID = re.compile(TOOL_ID_PATTERN)
_COLLECTION = "tools/"


def tool_name(tool_id: str) -> str:
    return f"{_COLLECTION}{tool_id}"


def check_tool_id(violations: Violations, field: str, tool_id: str) -> None:
    if not tool_id:
        violations.add(field, "is required")
    elif _TOOL_ID.match(tool_id) is None:
        violations.add(field, f"must match {TOOL_ID_PATTERN}")


def parse_tool_name(violations: Violations, field: str, name: str) -> str:
    """The id in `tools/{id}`; a violation (and "") when the name is not one."""
    if not name:
        violations.add(field, "is required")
        return ""
    tool_id = name.removeprefix(_COLLECTION)
    if tool_id == name or _TOOL_ID.match(tool_id) is None:
        violations.add(field, f"must be tools/{{tool}} with the id matching {TOOL_ID_PATTERN}")
        return ""
    return tool_id
