"""Realistic toolset results for the investigation's unit tests, as made ToolCalls.

Shapes follow the investigation contract's tool results; `output` is what
`calls.render` makes of them, as the toolbox records it.
"""

from __future__ import annotations

from typing import Any

from services.investigation.calls import ToolCall, render

NS = "shop"
NEW_RS = "api-7d9f8c6b5"
OLD_RS = "api-6c5d4b3a2"


class Calls:
    """Numbers calls `c1`, `c2`... in the order they are added, like the toolbox."""

    def __init__(self) -> None:
        self.made: list[ToolCall] = []

    def ok(self, tool: str, arguments: dict[str, Any], result: Any) -> ToolCall:
        call = ToolCall(
            id=f"c{len(self.made) + 1}",
            toolset=tool.split("_", 1)[0],
            tool=tool,
            arguments=arguments,
            result=result,
            output=render(result),
            truncated=False,
            ok=True,
        )
        self.made.append(call)
        return call

    def failed(self, tool: str, arguments: dict[str, Any], code: str, sentence: str) -> ToolCall:
        call = ToolCall(
            id=f"c{len(self.made) + 1}",
            toolset=tool.split("_", 1)[0],
            tool=tool,
            arguments=arguments,
            result=None,
            output=sentence,
            truncated=False,
            ok=False,
            error_code=code,
        )
        self.made.append(call)
        return call


def container(
    name: str = "api",
    *,
    image: str = "registry.example.com/shop/api:1.4.0",
    ready: bool = True,
    restart_count: int = 0,
    state: str = "running",
    reason: str = "",
    message: str = "",
    exit_code: int | None = None,
    last_state: dict[str, Any] | None = None,
    memory_limit: str = "256Mi",
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "ready": ready,
        "restart_count": restart_count,
        "state": state,
        "reason": reason,
        "message": message,
        "exit_code": exit_code,
        "last_state": last_state,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": memory_limit},
        },
    }


def crashing(restarts: int = 7, pod: str = "api-7d9f8c6b5-x2x1q") -> dict[str, Any]:
    return container(
        ready=False,
        restart_count=restarts,
        state="waiting",
        reason="CrashLoopBackOff",
        message=f"back-off 5m0s restarting failed container=api pod={pod}_shop(0c1d)",
        last_state={
            "state": "terminated",
            "reason": "Error",
            "exit_code": 1,
            "finished_at": "2024-05-02T10:11:12Z",
        },
    )


def pod(
    name: str,
    *,
    containers: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    node: str = "node-a",
    owner: str = f"ReplicaSet/{NEW_RS}",
    namespace: str = NS,
) -> dict[str, Any]:
    cs = containers if containers is not None else [container()]
    return {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "ready": f"{sum(1 for c in cs if c['ready'])}/{len(cs)}",
        "restarts": sum(c["restart_count"] for c in cs),
        "node": node,
        "owner": owner,
        "age_seconds": 3600,
        "containers": cs,
    }


def described(
    summary: dict[str, Any],
    events: list[dict[str, Any]] | None = None,
    *,
    conditions: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ready = summary["phase"] == "Running" and all(c["ready"] for c in summary["containers"])
    detail = {
        **summary,
        "conditions": conditions
        if conditions is not None
        else [{"type": "Ready", "status": str(ready), "reason": "", "message": ""}],
        "labels": {"app": "api"},
        "node_selector": {},
        "volumes": volumes or [{"name": "config", "kind": "configMap", "source": "api-config"}],
        "env": [
            {"container": "api", "name": "DB_PASSWORD", "value_from": "secret:db-creds/password"}
        ],
    }
    return {"pod": detail, "events": events or []}


def event(
    reason: str, message: str, obj: str, *, type: str = "Warning", count: int = 1
) -> dict[str, Any]:
    return {
        "type": type,
        "reason": reason,
        "message": message,
        "count": count,
        "object": obj,
        "first_seen": "2024-05-02T10:00:00Z",
        "last_seen": "2024-05-02T10:11:00Z",
        "source": "kubelet",
    }


def node(
    name: str, *, status: str = "True", reason: str = "KubeletReady", message: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "ready": status == "True",
        "unschedulable": False,
        "conditions": [
            {
                "type": "MemoryPressure",
                "status": "False",
                "reason": "KubeletHasSufficientMemory",
                "message": "",
            },
            {"type": "Ready", "status": status, "reason": reason, "message": message},
        ],
        "taints": [],
        "capacity": {"cpu": "4", "memory": "16Gi"},
        "allocatable": {"cpu": "3900m", "memory": "15Gi"},
    }


def series(values: list[str], metric: dict[str, str]) -> dict[str, Any]:
    floats = [float(v) for v in values]
    return {
        "metric": metric,
        "points": [[1714644000 + 60 * i, v] for i, v in enumerate(values)],
        "min": values[floats.index(min(floats))],
        "max": values[floats.index(max(floats))],
        "last": values[-1],
    }
