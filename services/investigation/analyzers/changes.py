"""A change that preceded the failure: the newest rollout of a deployment went out
shortly before its pods began failing (or before the alert fired).

When the failure began is the earliest of: the alert's start, the first Warning event
about one of the deployment's pods, and the last termination of one of its pods that
is failing now. Old, healed trouble (a pod that restarted days ago and runs) does not
count. The change is a lead only when it came first, and by at most `WINDOW` (a
rollout a week before is no longer "what changed"); a failure that began before the
rollout rules it out. The finding names each change as the diff shows it (an
environment variable removed, added or changed, an image changed) and quotes the
diff's before and after strings; when the deployment's pods now log a repeated error,
it quotes that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.logs import current_log_calls, most_repeated_error
from services.investigation.analyzers.observations import Observations
from services.investigation.analyzers.rollout import describe_change, split_rollout
from services.investigation.evidence import EvidenceRef
from services.investigation.results import (
    items,
    mapping,
    moment,
    number,
    strings,
    successful,
    text,
)

# How long before the failure a rollout still counts as the change that preceded it.
WINDOW = timedelta(hours=2)
# A rollout this much after the first sign still counts (clocks, event batching).
GRACE = timedelta(seconds=60)
_CHANGES_SHOWN = 4


def _onset(
    obs: Observations, namespace: str, deployment: str
) -> tuple[datetime | None, list[EvidenceRef | None]]:
    """When the deployment's failure began, and the evidence of that first sign."""
    signs: list[tuple[datetime, EvidenceRef | None]] = []
    if obs.alert_started is not None:
        signs.append((obs.alert_started, None))
    for event in obs.events:
        name = event.object_name
        owned = name.startswith(f"{deployment}-") and name.count("-") >= deployment.count("-") + 2
        if event.namespace == namespace and event.object_kind == "Pod" and owned:
            seen = event.first_seen
            if event.type == "Warning" and seen is not None:
                signs.append((seen, quote(event.call, event.message)))
    for pod in obs.pods:
        if pod.namespace != namespace or not pod.owned_by_deployment(deployment) or pod.ready:
            continue
        for container in pod.containers:
            ended = moment(container.last_state.get("finished_at"))
            if ended is not None and container.trouble:
                signs.append((ended, quote(pod.call, container.trouble)))
    if not signs:
        return None, []
    first = min(when for when, _ in signs)
    return first, [ref for when, ref in signs if when == first]


def _logged_error(
    obs: Observations, namespace: str, deployment: str
) -> tuple[str, list[EvidenceRef | None]]:
    for call, pod_namespace, pod, _ in current_log_calls(obs):
        owned = pod.startswith(f"{deployment}-")
        if pod_namespace != namespace or not owned:
            continue
        line, _, errors = most_repeated_error(strings(call.result.get("lines")))
        if errors >= 2:
            return line, [quote(call, line)]
    return "", []


def _minutes(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes} minutes" if minutes != 1 else "1 minute"


def recent_change(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "kubernetes_rollout_history"):
        namespace = text(call.arguments.get("namespace"))
        name = text(call.result.get("deployment")) or text(call.arguments.get("name"))
        diff = mapping(call.result.get("diff"))
        changes = items(diff.get("changes"))
        revision = number(diff.get("to_revision"))
        created = next(
            (
                moment(rev.get("created"))
                for rev in items(call.result.get("revisions"))
                if number(rev.get("revision")) == revision
            ),
            None,
        )
        failing, running = split_rollout(obs, call)
        if not changes or created is None or (failing and running):
            # A broken rollout (its pods fail, the previous ones run) is bad_rollout's.
            continue
        onset, first_signs = _onset(obs, namespace, name)
        if onset is None or not (created - GRACE <= onset <= created + WINDOW):
            continue
        described = "; ".join(describe_change(c) for c in changes[:_CHANGES_SHOWN])
        if len(changes) > _CHANGES_SHOWN:
            described += f"; and {len(changes) - _CHANGES_SHOWN} more changes"
        evidence: list[EvidenceRef | None] = []
        for change in changes:
            evidence += [
                quote(call, text(change.get("before"))),
                quote(call, text(change.get("after"))),
            ]
        evidence += first_signs
        line, logged = _logged_error(obs, namespace, name)
        evidence += logged
        lead = f"{_minutes(onset - created)} before the failure began"
        sentence = (
            f"Revision {revision} of deployment {namespace}/{name}, rolled out {lead}, {described}"
        )
        if line:
            sentence += f"; its pods now log: {clipped(line)}"
        yield finding(
            "recent_change",
            title=f"Deployment {namespace}/{name} changed {lead}",
            detail=sentence + ".",
            subject=f"deployment/{namespace}/{name}",
            evidence=evidence,
            severity=3,
            root_cause=sentence + ".",
            recommendations=(
                f"Undo the change (kubectl rollout undo deployment/{name} -n {namespace}) "
                "if the failure began with it.",
                "Then fix the change before rolling it out again.",
            ),
        )
