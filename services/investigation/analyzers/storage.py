"""PersistentVolumeClaims stuck Pending: no volume can be provisioned or bound.

Evidence quotes the claim's provisioning events (ProvisioningFailed, FailedBinding)
and, when the claim names a storage class the cluster does not have, that name.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import items, successful, text

_PROVISIONING = frozenset({"ProvisioningFailed", "FailedBinding"})


def pvc_pending(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "kubernetes_list_pvcs"):
        namespace = text(call.arguments.get("namespace"))
        classes = items(call.result.get("storage_classes"))
        class_names = {text(c.get("name")) for c in classes}
        has_default = any(c.get("default") is True for c in classes)
        for pvc in items(call.result.get("pvcs")):
            name = text(pvc.get("name"))
            if not name or text(pvc.get("phase")) != "Pending":
                continue
            storage_class = text(pvc.get("storage_class"))
            evidence: list[EvidenceRef | None] = []
            causes: list[str] = []
            for event in obs.events_of(namespace, "PersistentVolumeClaim", name):
                if event.reason in _PROVISIONING:
                    evidence.append(quote(event.call, event.message))
                    if not causes:
                        causes.append(clipped(event.message))
            if storage_class and classes and storage_class not in class_names:
                evidence.append(quote(call, storage_class))
                causes.append(f"storage class {storage_class} does not exist")
            elif not storage_class and classes and not has_default:
                causes.append("it names no storage class and none is the default")
            evidence.append(quote(call, name))
            why = "; ".join(causes)
            yield finding(
                "pvc_pending",
                title=f"PVC {namespace}/{name} is Pending",
                detail=f"PVC {namespace}/{name} is not bound" + (f": {why}." if why else "."),
                subject=f"pvc/{namespace}/{name}",
                evidence=evidence,
                severity=4 if why else 3,
                root_cause=f"PVC {namespace}/{name} cannot be bound: {why}." if why else "",
                recommendations=(
                    "Use an existing storage class, or install the provisioner it names.",
                    "Check the provisioner's logs and the storage backend's quota.",
                ),
            )
