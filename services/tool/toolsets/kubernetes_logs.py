"""Container logs: current or previous instance, the last lines, a time window, a filter.

lightkube 1.0.1's `AsyncClient.log` has no `previous` option, so the request is built
with the same client's request builder (`prepare_request` for the `PodLog`
subresource), which keeps its authentication, TLS and base URL. The API server cuts
the answer (`tailLines`, `sinceSeconds`, `limitBytes`), so a huge log is never
transferred; `grep` then keeps the matching lines of what came back and counts them.

`grep` is a regular expression when it compiles as one, else a plain substring. Python's
regex engine backtracks, so a pattern that nests quantifiers (`(a+)+`) is refused: it
could pin the event loop on a long line.
"""

from __future__ import annotations

import re
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod, PodLog

from services.common.errors import FailedPrecondition, InvalidArgument
from services.tool.toolsets.kubernetes_errors import api_errors
from services.tool.toolsets.kubernetes_pods import JsonObject

# What the API server sends at most (it stops at this many bytes).
LIMIT_BYTES = 1024 * 1024
# A longer line is cut here (a JSON log line with a dump in it).
MAX_LINE_CHARS = 4096
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*}][^()]*\)\s*[+*{]")


def log_hint(said: str) -> str:
    """What to do about the kubelet's refusal of a log (its message is quoted before)."""
    if "is waiting to start" in said or "is not available" in said:
        return (
            "the container has not started, so it has no log yet; kubernetes_describe_pod "
            "shows why it waits"
        )
    if "previous terminated container" in said:
        return (
            "the container has no earlier instance: it has not restarted since the pod "
            "started, or that instance's log is gone; read the current log instead"
        )
    return ""


def line_filter(pattern: str | None) -> re.Pattern[str] | None:
    """The compiled filter; InvalidArgument for a pattern that could backtrack badly."""
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error:
        return re.compile(re.escape(pattern))
    if _NESTED_QUANTIFIER.search(pattern):
        raise InvalidArgument.for_field(
            "grep", "nested quantifiers such as (a+)+ are not allowed; simplify the pattern"
        )
    return compiled


def pick_container(pod: Pod, wanted: str | None, where: str) -> str:
    spec = pod.spec
    names = [c.name for c in spec.containers] if spec is not None else []
    names += [c.name for c in (spec.initContainers if spec is not None else None) or []]
    if wanted:
        if wanted not in names:
            raise InvalidArgument.for_field(
                "container",
                f"{where} has no container '{wanted[:64]}' (it has: {', '.join(names)})",
            )
        return wanted
    annotations = (pod.metadata.annotations if pod.metadata is not None else None) or {}
    default = annotations.get(DEFAULT_CONTAINER)
    if default in names:
        return str(default)
    if spec is not None and len(spec.containers) == 1:
        return spec.containers[0].name
    raise InvalidArgument.for_field(
        "container", f"{where} has several containers ({', '.join(names)}); name one"
    )


async def read_log(
    client: AsyncClient,
    namespace: str,
    name: str,
    container: str,
    *,
    previous: bool,
    tail_lines: int,
    since_seconds: int | None,
) -> list[str]:
    """The log's lines as the API server cut them (trailing newline dropped)."""
    generic = client._client  # the request builder `AsyncClient.log` uses too
    params: dict[str, Any] = {
        "container": container,
        "previous": "true" if previous else None,
        "tailLines": tail_lines,
        "sinceSeconds": since_seconds,
        "limitBytes": LIMIT_BYTES,
    }
    request = generic.prepare_request("get", PodLog, name=name, namespace=namespace, params=params)
    instance = "previous instance" if previous else "current instance"
    what = (
        f"the logs of container '{container}' ({instance}) of pod '{name}' "
        f"in namespace '{namespace}'"
    )
    async with api_errors(what, bad_request=FailedPrecondition, hint=log_hint):
        response = await generic.send(generic.build_adapter_request(request))
        generic.raise_for_status(response)
    text = response.content.decode(errors="replace")
    return [
        line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
        for line in text.splitlines()
    ]


def log_result(
    pod: str,
    container: str,
    *,
    previous: bool,
    lines: list[str],
    tail_lines: int,
    pattern: re.Pattern[str] | None,
) -> JsonObject:
    """`truncated`: the tail limit was reached, so older lines may exist."""
    truncated = len(lines) >= tail_lines
    matched: int | None = None
    if pattern is not None:
        lines = [line for line in lines if pattern.search(line)]
        matched = len(lines)
    return {
        "pod": pod,
        "container": container,
        "previous": previous,
        "lines": lines,
        "matched": matched,
        "truncated": truncated,
    }
