"""Pod logs as the fake Kubernetes API serves them: the kubelet's answers and refusals.

`GET /api/v1/namespaces/N/pods/P/log` with `container`, `previous`, `tailLines`,
`sinceSeconds`, `limitBytes` and `timestamps`. A log that does not exist is refused as
the kubelet refuses it (400, its words): `previous` needs a terminated last instance;
the current log of a container that never ran says why it waits; a pod with no node has
an empty log (the API server has no kubelet to ask).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.fakes.kube_scenario import ContainerLogs, Scenario
from tests.fakes.kube_wire import bad_request

# What the kubelet says of a waiting container's logs, by its waiting reason.
_WAITING_SAID = {
    "ErrImagePull": "image can't be pulled",
    "ImagePullBackOff": "trying and failing to pull image",
}


def container_of(pod: dict[str, Any], wanted: str) -> str:
    """The container asked for, or the pod's only one; refused as the server does."""
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in pod["spec"]["containers"]]
    if not wanted:
        if len(containers) != 1:
            raise bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        return containers[0]
    if wanted not in containers:
        raise bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def logs_of(
    scenario: Scenario, pod: dict[str, Any], container: str, previous: bool
) -> ContainerLogs:
    """The logs the kubelet would serve, or its refusal (Refused, a 400)."""
    meta = pod["metadata"]
    logs = scenario.logs.get(f"{meta['namespace']}/{meta['name']}/{container}")
    statuses = pod.get("status", {}).get("containerStatuses", [])
    status = next((s for s in statuses if s["name"] == container), None)
    where = f'container "{container}" in pod "{meta["name"]}"'
    if not pod.get("spec", {}).get("nodeName"):
        # Not scheduled: the API server has no kubelet to ask and answers nothing.
        return ContainerLogs(previous=[])
    state = (status or {}).get("state", {})
    ran_before = "terminated" in (status or {}).get("lastState", {})
    if previous:
        if not ran_before or logs is None or logs.previous is None:
            raise bad_request(f"previous terminated {where} not found")
        return logs
    if status is None:
        raise bad_request(f"{where} is not available")
    if "running" in state or "terminated" in state or ran_before:
        return logs if logs is not None else ContainerLogs()
    reason = state.get("waiting", {}).get("reason", "")
    said = _WAITING_SAID.get(reason, reason)
    raise bad_request(
        f"{where} is waiting to start: {said}"
        if said
        else f"{where} is waiting to start - no logs yet"
    )


def log_body(scenario: Scenario, pod: dict[str, Any], query: Mapping[str, str]) -> bytes:
    """The plain-text log the request's query asks for (Refused when there is none)."""
    container = container_of(pod, query.get("container", ""))
    previous = query.get("previous") == "true"
    logs = logs_of(scenario, pod, container, previous)
    lines = (logs.previous or []) if previous else logs.current
    try:
        if query.get("sinceSeconds"):
            cutoff = datetime.now(UTC).timestamp() - int(query["sinceSeconds"])
            lines = [line for line in lines if line.at >= cutoff]
        if query.get("tailLines"):
            tail = int(query["tailLines"])
            lines = lines[-tail:] if tail > 0 else []
        limit = int(query.get("limitBytes") or 0)
    except ValueError:
        raise bad_request("invalid log options") from None
    stamped = query.get("timestamps") == "true"
    text = "".join(
        (
            datetime.fromtimestamp(line.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z ")
            if stamped
            else ""
        )
        + line.text
        + "\n"
        for line in lines
    )
    body = text.encode()
    return body[:limit] if limit > 0 else body
