"""Reading the toolset tools' results: pods, containers, events, nodes, PVCs, series.

Results are JSON from another service, so every reader is defensive: a missing or
mistyped field reads as empty, never raises. The context plan's second round and the
analyzers read the calls through these views, so both agree on what a failing pod is.
Each view keeps the call it came from: evidence names that call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from services.investigation.calls import ToolCall

T = TypeVar("T")

# Container reasons that mean the container cannot start or keeps failing.
WAITING_TROUBLE = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def number(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (anything else skipped)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def moment(value: Any) -> datetime | None:
    """An RFC 3339 time from a result (`2024-05-02T10:00:00Z`), None when it is not one."""
    raw = text(value)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Read(Generic[T]):
    """A view's field read from its raw JSON with one of the readers above: `reason =
    _Read("reason", text)` instead of a property per field."""

    def __init__(self, key: str, reader: Callable[[Any], T]) -> None:
        self._key = key
        self._reader = reader

    def __get__(self, view: Any, owner: type | None = None) -> T:
        return self._reader(view.raw.get(self._key))


def _optional_number(value: Any) -> int | None:
    return number(value) if value is not None else None


def successful(calls: Sequence[ToolCall], tool: str) -> Iterator[ToolCall]:
    """The calls of `tool` that succeeded with an object result."""
    for call in calls:
        if call.ok and call.tool == tool and isinstance(call.result, dict):
            yield call


@dataclass(frozen=True)
class ContainerView:
    """One container of a pod, as a pod summary shows it."""

    raw: dict[str, Any]

    name = _Read("name", text)

    image = _Read("image", text)

    @property
    def ready(self) -> bool:
        return self.raw.get("ready") is True

    state = _Read("state", text)

    reason = _Read("reason", text)

    message = _Read("message", text)

    restart_count = _Read("restart_count", number)

    exit_code = _Read("exit_code", _optional_number)

    last_state = _Read("last_state", mapping)

    @property
    def last_reason(self) -> str:
        return text(self.last_state.get("reason"))

    @property
    def last_exit_code(self) -> int | None:
        code = self.last_state.get("exit_code")
        return number(code) if code is not None else None

    @property
    def memory_limit(self) -> str:
        limits = mapping(mapping(self.raw.get("resources")).get("limits"))
        return text(limits.get("memory"))

    @property
    def ports(self) -> list[str]:
        """`8080/TCP`, `http:8080/TCP` (describe only)."""
        return strings(self.raw.get("ports"))

    def probe(self, kind: str) -> dict[str, Any]:
        """`{type, port, path}` of the `liveness`/`readiness`/`startup` probe (describe
        only), {} when it has none."""
        return mapping(mapping(self.raw.get("probes")).get(kind))

    @property
    def trouble(self) -> str:
        """The reason this container is failing (`CrashLoopBackOff`...), or ""."""
        if self.state == "waiting" and self.reason in WAITING_TROUBLE:
            return self.reason
        if self.state == "terminated" and self.exit_code not in (None, 0):
            return self.reason or "Error"
        return ""


@dataclass(frozen=True)
class PodView:
    """A pod summary from `kubernetes_describe_pod` or `kubernetes_list_pods`."""

    call: ToolCall
    raw: dict[str, Any]
    # Events that came with the pod (describe only).
    events: tuple[EventView, ...] = ()

    name = _Read("name", text)

    @property
    def namespace(self) -> str:
        return text(self.raw.get("namespace")) or text(self.call.arguments.get("namespace"))

    @property
    def subject(self) -> str:
        return f"pod/{self.namespace}/{self.name}"

    phase = _Read("phase", text)

    node = _Read("node", text)

    @property
    def reason(self) -> str:
        """The pod's own status reason (`Evicted`), "" when none."""
        return text(self.raw.get("reason"))

    message = _Read("message", text)

    owner = _Read("owner", text)

    restarts = _Read("restarts", number)

    @property
    def containers(self) -> list[ContainerView]:
        return [ContainerView(item) for item in items(self.raw.get("containers"))]

    conditions = _Read("conditions", items)

    volumes = _Read("volumes", items)

    @property
    def ready(self) -> bool:
        """Running with every container ready (a completed pod counts as fine)."""
        if self.phase == "Succeeded":
            return True
        containers = self.containers
        return self.phase == "Running" and bool(containers) and all(c.ready for c in containers)

    @property
    def trouble(self) -> str:
        """The worst container reason, or the phase when the pod is Pending or Failed."""
        for container in self.containers:
            if container.trouble:
                return container.trouble
        return self.phase if self.phase in ("Pending", "Failed", "Unknown") else ""

    def badness(self) -> tuple[int, int]:
        """Ordering key, worse first when sorted descending: failing containers, then a
        bad phase, then not ready; ties by restarts."""
        if any(c.trouble for c in self.containers):
            rank = 3
        elif self.phase in ("Pending", "Failed", "Unknown"):
            rank = 2
        elif not self.ready:
            rank = 1
        else:
            rank = 0
        return rank, self.restarts

    def owned_by_deployment(self, deployment: str) -> bool:
        """Whether its owner is a ReplicaSet of `deployment` (`ReplicaSet/<deployment>-<hash>`)."""
        owner = self.owner
        prefix = f"ReplicaSet/{deployment}-"
        return owner.startswith(prefix) and "-" not in owner[len(prefix) :]


@dataclass(frozen=True)
class EventView:
    """A Kubernetes event from `kubernetes_events` or a describe."""

    call: ToolCall
    raw: dict[str, Any]
    namespace: str

    type = _Read("type", text)

    reason = _Read("reason", text)

    message = _Read("message", text)

    first_seen = _Read("first_seen", moment)

    @property
    def object_kind(self) -> str:
        return text(self.raw.get("object")).partition("/")[0]

    @property
    def object_name(self) -> str:
        return text(self.raw.get("object")).partition("/")[2]


def pods(calls: Sequence[ToolCall]) -> list[PodView]:
    """Every pod seen, describes first (they carry conditions and events), in call order."""
    seen: list[PodView] = []
    for call in successful(calls, "kubernetes_describe_pod"):
        pod = mapping(call.result.get("pod"))
        if pod:
            namespace = text(pod.get("namespace")) or text(call.arguments.get("namespace"))
            events = tuple(
                EventView(call, raw, namespace) for raw in items(call.result.get("events"))
            )
            seen.append(PodView(call, pod, events))
    for call in successful(calls, "kubernetes_list_pods"):
        seen.extend(PodView(call, raw) for raw in items(call.result.get("pods")))
    return seen


def events(calls: Sequence[ToolCall]) -> list[EventView]:
    """Every event seen, from `kubernetes_events` calls and from describes."""
    seen: list[EventView] = []
    for call in successful(calls, "kubernetes_events"):
        namespace = text(call.arguments.get("namespace"))
        seen.extend(EventView(call, raw, namespace) for raw in items(call.result.get("events")))
    for pod in pods(calls):
        seen.extend(pod.events)
    return seen
