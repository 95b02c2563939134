"""A rollout that broke its deployment: the newest revision changed something and its
pods fail while the previous revision's pods still run.

Both halves are required: a change alone is routine, and failing pods alone have many
causes. Together the change is the root cause, and undoing the rollout the remedy.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.calls import ToolCall
from services.investigation.evidence import EvidenceRef
from services.investigation.results import PodView, items, mapping, number, successful, text

# Changes named in a root cause sentence.
_CHANGES_SHOWN = 3
# Characters of a diff's before or after value in a sentence.
_QUOTE = 100


def describe_change(change: dict[str, object]) -> str:
    """One change of a rollout diff in words: an environment variable removed, added or
    changed (quoting `NAME=value` before and after), or a field changed."""
    field, container = text(change.get("field")), text(change.get("container"))
    before, after = text(change.get("before")), text(change.get("after"))
    if field == "env":
        variable = (before or after).partition("=")[0]
        if not after:
            return (
                f"removed env {variable} of container {container} (was {clipped(before, _QUOTE)})"
            )
        if not before:
            return f"added env {clipped(after, _QUOTE)} to container {container}"
        return (
            f"changed env of container {container} from {clipped(before, _QUOTE)} "
            f"to {clipped(after, _QUOTE)}"
        )
    return (
        f"changed the {field} of container {container} from "
        f"{clipped(before, _QUOTE) or '(none)'} to {clipped(after, _QUOTE) or '(none)'}"
    )


def split_rollout(obs: Observations, call: ToolCall) -> tuple[list[PodView], list[PodView]]:
    """(the newest revision's pods that fail, the older revisions' pods that run) of a
    rollout history call; both non-empty is a broken rollout."""
    namespace = text(call.arguments.get("namespace"))
    diff = mapping(call.result.get("diff"))
    sets = {
        number(rev.get("revision")): text(rev.get("replicaset"))
        for rev in items(call.result.get("revisions"))
    }
    new_rs = sets.get(number(diff.get("to_revision")), "")
    old_sets = {rs for rs in sets.values() if rs and rs != new_rs}
    if not new_rs or not old_sets:
        return [], []
    pods = [p for p in obs.pods if p.namespace == namespace]
    failing = [p for p in pods if p.owner == f"ReplicaSet/{new_rs}" and not p.ready]
    running = [p for p in pods if p.owner.removeprefix("ReplicaSet/") in old_sets and p.ready]
    return failing, running


def bad_rollout(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "kubernetes_rollout_history"):
        namespace = text(call.arguments.get("namespace"))
        name = text(call.result.get("deployment")) or text(call.arguments.get("name"))
        diff = mapping(call.result.get("diff"))
        changes = items(diff.get("changes"))
        if not changes:
            continue
        failing, running = split_rollout(obs, call)
        if not failing or not running:
            continue
        new_rs = failing[0].owner.removeprefix("ReplicaSet/")
        shown = [describe_change(c) for c in changes[:_CHANGES_SHOWN]]
        evidence: list[EvidenceRef | None] = []
        for change in changes:
            evidence.append(quote(call, text(change.get("after")) or text(change.get("before"))))
        worst = max(failing, key=lambda p: p.badness())
        evidence.append(quote(worst.call, worst.owner))
        for container in worst.containers:
            evidence.append(quote(worst.call, container.message or container.reason))
        evidence.append(quote(running[0].call, running[0].owner))
        revision = number(diff.get("to_revision"))
        change_text = "; ".join(shown)
        yield finding(
            "bad_rollout",
            title=f"Revision {revision} of deployment {namespace}/{name} broke it",
            detail=(
                f"Revision {revision} ({new_rs}) {change_text}. {len(failing)} of its "
                f"pods fail ({worst.name}: {worst.trouble or 'not ready'}) while "
                f"{len(running)} pods of the previous revision run."
            ),
            subject=f"deployment/{namespace}/{name}",
            evidence=evidence,
            severity=4,
            root_cause=(
                f"Revision {revision} of deployment {namespace}/{name} {change_text}; "
                "its pods fail while the previous revision's pods run."
            ),
            recommendations=(
                f"Roll back: kubectl rollout undo deployment/{name} -n {namespace}.",
                "Then fix the change before rolling out again.",
            ),
        )


def _condition(deployment: dict[str, object], kind: str) -> dict[str, object]:
    for condition in items(deployment.get("conditions")):
        if text(condition.get("type")) == kind:
            return condition
    return {}


def stuck_rollout(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    """A deployment whose rollout stopped progressing: its Progressing condition is False
    (`ProgressDeadlineExceeded`: the new ReplicaSet did not become available in time).
    A symptom of whatever keeps the new pods from running; the finding quotes the
    controller's words and the replica counts."""
    for call in successful(obs.calls, "kubernetes_list_deployments"):
        for deployment in items(call.result.get("deployments")):
            name = text(deployment.get("name"))
            namespace = text(deployment.get("namespace")) or text(call.arguments.get("namespace"))
            progressing = _condition(deployment, "Progressing")
            if not name or text(progressing.get("status")) != "False":
                continue
            reason, message = text(progressing.get("reason")), text(progressing.get("message"))
            counts = (
                f"{number(deployment.get('updated_replicas'))} of "
                f"{number(deployment.get('replicas'))} replicas updated, "
                f"{number(deployment.get('ready_replicas'))} ready"
            )
            yield finding(
                "stuck_rollout",
                title=f"The rollout of deployment {namespace}/{name} is stuck",
                detail=(
                    f"Deployment {namespace}/{name} stopped progressing ({reason or 'False'}"
                    + (f": {clipped(message)}" if message else "")
                    + f"); {counts}."
                ),
                subject=f"deployment/{namespace}/{name}",
                evidence=[quote(call, message), quote(call, reason)],
                severity=3,
                recommendations=(
                    "Find why the new revision's pods do not become ready (their state and "
                    "events), then fix it or roll back.",
                ),
            )
