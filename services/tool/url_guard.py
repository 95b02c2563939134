"""The URL of one tool call: placeholders filled, then checked again before it is used.

Every argument is percent-encoded with nothing left safe, so `/`, `?`, `#`, `@` and `:`
in a value stay inside its placeholder; a value that is a whole `.` or `..` is refused,
as a server would treat it as a path step. The filled URL is then parsed and must keep
the template's scheme, host and port, and that host must still be allowed (the
allow-list may have changed since the tool was registered). Redirects are never
followed (see executor_http.py), so the checked URL is the only one called.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import FailedPrecondition
from services.common.tool_config import HostAllowList, UrlTemplate
from services.common.validation import Violations
from services.tool.schema import invalid_arguments

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DOT_SEGMENTS = (".", "..")


def _text(value: Any) -> str | None:
    """A scalar argument as URL text; None for values a URL cannot carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def fill(template: UrlTemplate, arguments: dict[str, Any]) -> str:
    """The template with every placeholder replaced; INVALID_ARGUMENT naming the
    argument when a value cannot be placed in a URL."""
    violations = Violations()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        field = f"arguments.{name}"
        if name not in arguments:
            violations.add(field, "is a required property (the tool's URL needs it)")
            return ""
        text = _text(arguments[name])
        if text is None:
            violations.add(field, "must be a string, number or boolean to fill the tool's URL")
            return ""
        if text in _DOT_SEGMENTS:
            violations.add(field, "must not be '.' or '..' (it would move the URL's path)")
            return ""
        return quote(text, safe="")

    url = _PLACEHOLDER.sub(replace, template.template)
    if violations:
        raise invalid_arguments(violations.items)
    return url


def check_call_url(url: str, template: UrlTemplate, allow: HostAllowList) -> None:
    """Refuses a filled URL that left the template's origin or whose host is no longer
    allowed. The first cannot happen with `fill`; the check stands on its own anyway."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").rstrip(".").lower()
    same_origin = (
        parts.scheme.lower() == template.scheme
        and host == template.host
        and (port if port is not None else template.port) == template.port
        and "@" not in parts.netloc
    )
    if not same_origin:
        raise invalid_arguments_for_url()
    if any(unquote(segment) in _DOT_SEGMENTS for segment in parts.path.split("/")):
        raise invalid_arguments_for_url()
    if not allow.allows(template.host, template.port):
        raise FailedPrecondition(
            f"the tool's host '{template.authority}' is not in tools.allowed_hosts",
            reason=error_reason_pb2.ERROR_REASON_TOOL_FAILED,
        )


def invalid_arguments_for_url() -> Exception:
    violations = Violations()
    violations.add("arguments", "the arguments would change where the tool's URL points")
    return invalid_arguments(violations.items)
