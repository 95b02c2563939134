"""Containers that cannot run: crash loops, out-of-memory kills, images that cannot be
pulled, configuration a container cannot start without.

Evidence quotes the container's reason and message from the pod call, the pod's
events, and for a crash loop the error that ended the last instance: from its previous
logs, else from its current logs (between restarts the kubelet serves the last
instance's log as the current one).
"""

from __future__ import annotations

from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.logs import last_error_line
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import (
    ContainerView,
    PodView,
    mapping,
    strings,
    successful,
    text,
)

# Restarts that make a running container a crash loop even between back-offs.
RESTART_THRESHOLD = 3
_IMAGE_PULL = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_CONFIG = frozenset({"CreateContainerConfigError", "CreateContainerError"})
# SIGKILL: what the kernel's OOM killer sends.
_SIGKILL_EXIT = 137


def _containers(obs: Observations) -> Iterator[tuple[PodView, ContainerView]]:
    for pod in obs.pods:
        for container in pod.containers:
            yield pod, container


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _where(pod: PodView, container: ContainerView) -> str:
    return f"container {container.name} of pod {pod.namespace}/{pod.name}"


def crash_loop(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for pod, container in _containers(obs):
        looping = container.reason == "CrashLoopBackOff"
        if not looping and container.restart_count < RESTART_THRESHOLD:
            continue
        evidence: list[EvidenceRef | None] = [
            quote(pod.call, container.message),
            quote(pod.call, container.reason) if looping else None,
        ]
        if container.last_reason not in ("", "Completed"):
            evidence.append(quote(pod.call, container.last_reason))
        for event in obs.events_of(pod.namespace, "Pod", pod.name):
            if event.reason == "BackOff" and "restarting" in event.message:
                evidence.append(quote(event.call, event.message))
        error = ""
        logs = obs.logs(pod.namespace, pod.name, container.name, previous=True)
        logs += obs.logs(pod.namespace, pod.name, container.name, previous=False)
        for call in logs:
            error = last_error_line(strings(mapping(call.result).get("lines")))
            if error:
                evidence.insert(0, quote(call, error))
                break
        where = _where(pod, container)
        detail = f"{_cap(where)} has restarted {container.restart_count} times"
        if container.last_reason:
            detail += f"; its last instance ended with {container.last_reason}"
            if container.last_exit_code is not None:
                detail += f" (exit code {container.last_exit_code})"
        detail += "."
        if error:
            detail += f" The last error it logged: {clipped(error)}"
        yield finding(
            "crash_loop",
            title=f"{_cap(where)} is crash looping"
            if looping
            else f"{_cap(where)} has restarted {container.restart_count} times",
            detail=detail,
            subject=pod.subject,
            evidence=evidence,
            # Restarts alone (the container runs now) are a weaker sign than a back-off.
            severity=3 if looping else 2,
            root_cause=f"{_cap(where)} exits with: {clipped(error)}" if error and looping else "",
            recommendations=(
                f"Read the previous logs of {where} for the error that ends it.",
                "Fix the cause in the application or its configuration, then roll out again.",
            ),
        )


def oom_killed(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for pod, container in _containers(obs):
        reasons = (container.last_reason, container.reason)
        oom = "OOMKilled" in reasons
        sigkill = _SIGKILL_EXIT in (container.last_exit_code, container.exit_code)
        limit = container.memory_limit
        if not oom and not (sigkill and limit):
            continue
        where = _where(pod, container)
        evidence = [
            quote(pod.call, "OOMKilled") if oom else None,
            quote(pod.call, limit) if limit else None,
        ]
        if not oom:
            evidence.append(quote(pod.call, container.last_reason or container.reason))
        limit_text = f"its {limit} memory limit" if limit else "no memory limit (the node ran out)"
        detail = (
            f"{_cap(where)} was {'OOMKilled' if oom else 'killed (exit code 137)'} "
            f"with {limit_text}; it has restarted {container.restart_count} times."
        )
        yield finding(
            "oom_killed",
            title=f"{_cap(where)} is killed out of memory",
            detail=detail,
            subject=pod.subject,
            evidence=evidence,
            severity=4 if oom else 2,
            root_cause=f"{_cap(where)} runs out of memory: OOMKilled at {limit_text}."
            if oom
            else "",
            recommendations=(
                f"Raise the memory limit of {where} or lower its memory use.",
                "Check the container's memory graph for a leak before raising the limit.",
            ),
        )


def image_pull(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for pod, container in _containers(obs):
        if container.state != "waiting" or container.reason not in _IMAGE_PULL:
            continue
        where = _where(pod, container)
        evidence = [
            quote(pod.call, container.message),
            quote(pod.call, container.image),
            quote(pod.call, container.reason),
        ]
        pulled = ""
        for event in obs.events_of(pod.namespace, "Pod", pod.name):
            if event.type == "Warning" and "image" in event.message.lower():
                evidence.insert(0, quote(event.call, event.message))
                pulled = pulled or event.message
        because = f": {clipped(pulled)}" if pulled else f" ({container.reason})"
        yield finding(
            "image_pull",
            title=f"Image {container.image} of {where} cannot be pulled",
            detail=f"{_cap(where)} waits with {container.reason}{because}",
            subject=pod.subject,
            evidence=evidence,
            severity=4,
            root_cause=f"Image {container.image} of {where} cannot be pulled{because}",
            recommendations=(
                f"Check that image {container.image} exists and its tag is spelled right.",
                "Check the registry's credentials (imagePullSecrets) and reachability.",
            ),
        )


def _configmap_keys(obs: Observations, namespace: str, message: str) -> str:
    """`ConfigMap X has keys: a, b` for a ConfigMap named in `message` whose keys were
    read, else ""."""
    for call in successful(obs.calls, "kubernetes_configmap_keys"):
        name = text(call.result.get("name")) or text(call.arguments.get("name"))
        if name and text(call.arguments.get("namespace")) == namespace and name in message:
            keys = strings(call.result.get("keys"))
            return f" ConfigMap {name} has keys: {clipped(', '.join(keys)) or '(none)'}."
    return ""


def config_error(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for pod, container in _containers(obs):
        if container.state != "waiting" or container.reason not in _CONFIG:
            continue
        where = _where(pod, container)
        message = container.message
        evidence = [quote(pod.call, message), quote(pod.call, container.reason)]
        for event in obs.events_of(pod.namespace, "Pod", pod.name):
            if event.type == "Warning" and event.reason == "Failed":
                evidence.insert(0, quote(event.call, event.message))
                message = message or event.message
        detail = f"{_cap(where)} cannot be created ({container.reason})"
        detail += f": {clipped(message)}." if message else "."
        detail += _configmap_keys(obs, pod.namespace, message)
        yield finding(
            "config_error",
            title=f"{_cap(where)} is missing configuration",
            detail=detail,
            subject=pod.subject,
            evidence=evidence,
            severity=4,
            root_cause=f"{_cap(where)} cannot start: {clipped(message)}" if message else "",
            recommendations=(
                "Create the missing ConfigMap or Secret, or add the missing key.",
                "Or mark the reference optional if the container can run without it.",
            ),
        )
