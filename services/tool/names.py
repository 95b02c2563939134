"""Resource names `tools/{tool}` and tool ids."""

from __future__ import annotations

from services.common.resource_names import ResourceNames
from services.common.tool_config import TOOL_ID_PATTERN
from services.common.validation import Violations

RESOURCE_TYPE = "llmgw.tool.v1.Tool"
TOOLS = ResourceNames("tools", "tool", TOOL_ID_PATTERN)


def tool_name(tool_id: str) -> str:
    return TOOLS.name(tool_id)


def check_tool_id(violations: Violations, field: str, tool_id: str) -> None:
    TOOLS.check_id(violations, field, tool_id)


def parse_tool_name(violations: Violations, field: str, name: str) -> str:
    """The id in `tools/{id}`; a violation (and "") when the name is not one."""
    return TOOLS.parse(violations, field, name)
