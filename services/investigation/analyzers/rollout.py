"""A rollout that broke its deployment: the newest revision changed something and its
pods fail while the previous revision's pods still run.

Both halves are required: a change alone is routine, and failing pods alone have many
causes. Together the change is the root cause, and undoing the rollout the remedy.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import items, mapping, number, successful, text

# Changes named in a root cause sentence.
_CHANGES_SHOWN = 3


def bad_rollout(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "kubernetes_rollout_history"):
        namespace = text(call.arguments.get("namespace"))
        name = text(call.result.get("deployment")) or text(call.arguments.get("name"))
        diff = mapping(call.result.get("diff"))
        changes = items(diff.get("changes"))
        if not changes:
            continue
        sets = {
            number(rev.get("revision")): text(rev.get("replicaset"))
            for rev in items(call.result.get("revisions"))
        }
        new_rs = sets.get(number(diff.get("to_revision")), "")
        old_sets = {rs for rs in sets.values() if rs and rs != new_rs}
        if not new_rs or not old_sets:
            continue
        pods = [p for p in obs.pods if p.namespace == namespace]
        failing = [p for p in pods if p.owner == f"ReplicaSet/{new_rs}" and not p.ready]
        running = [p for p in pods if p.owner.removeprefix("ReplicaSet/") in old_sets and p.ready]
        if not failing or not running:
            continue
        shown = [
            f"{text(c.get('field'))} of container {text(c.get('container'))} "
            f"from {clipped(text(c.get('before')), 80)} to {clipped(text(c.get('after')), 80)}"
            for c in changes[:_CHANGES_SHOWN]
        ]
        evidence: list[EvidenceRef | None] = []
        for change in changes:
            evidence.append(quote(call, text(change.get("after"))))
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
                f"Revision {revision} ({new_rs}) changed {change_text}. {len(failing)} of its "
                f"pods fail ({worst.name}: {worst.trouble or 'not ready'}) while "
                f"{len(running)} pods of the previous revision run."
            ),
            subject=f"deployment/{namespace}/{name}",
            evidence=evidence,
            severity=4,
            root_cause=(
                f"Revision {revision} of deployment {namespace}/{name} changed {change_text}; "
                "its pods fail while the previous revision's pods run."
            ),
            recommendations=(
                f"Roll back: kubectl rollout undo deployment/{name} -n {namespace}.",
                "Then fix the change before rolling out again.",
            ),
        )
