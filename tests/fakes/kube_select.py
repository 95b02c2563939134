"""Label and field selectors as the API server reads them.

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
comma-separated (commas inside parentheses belong to the set). Field selectors: `k=v`,
`k==v`, `k!=v` on a dotted path of the object (`involvedObject.name`, `status.phase`,
`spec.nodeName`, `metadata.name`). A selector that cannot be parsed is a ValueError,
answered 400 BadRequest like the real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$")


def _split(selector: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _key(text: str) -> str:
    key = text.strip()
    if not _KEY.match(key):
        raise ValueError(f"invalid label key {key!r}")
    return key


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    found = _SET.match(term)
    if found:
        key, op = _key(found.group(1)), found.group(2)
        values = {value.strip() for value in found.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = term.partition(op)
            key, value = _key(key), value.strip()
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = _key(term[1:])
        return lambda labels: key not in labels
    key = _key(term)
    return lambda labels: key in labels


def label_matcher(selector: str) -> Matcher:
    terms = [_label_term(term) for term in _split(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return "" if value is None else str(value)


_META = frozenset({"metadata.name", "metadata.namespace"})
_CORE_EVENT = _META | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}
_EVENTS_V1 = _META | {
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
}
# (group, kind) -> the field labels the real server accepts; kinds not here have the
# generic conversion (metadata.name and metadata.namespace, another message).
FIELD_LABELS: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): _META
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    ("", "Event"): _CORE_EVENT,
    ("events.k8s.io", "Event"): _EVENTS_V1,
    ("", "Node"): frozenset({"metadata.name", "spec.unschedulable"}),
    ("", "Namespace"): frozenset({"metadata.name", "status.phase"}),
    ("", "Secret"): _META | {"type"},
    ("", "PersistentVolumeClaim"): _META,
    ("", "ConfigMap"): _META,
    ("apps", "ReplicaSet"): _META | {"status.replicas"},
}
# Field labels whose value is not at their own path in the object.
_PATHS: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("", "source"): lambda obj: _field(obj, "source.component"),
    ("events.k8s.io", "source"): lambda obj: (
        _field(obj, "deprecatedSource.component") or _field(obj, "reportingController")
    ),
}


class UnsupportedField(ValueError):
    """A field label the kind does not register: the real server's exact message."""


def _supported(group: str, kind: str, label: str) -> None:
    labels = FIELD_LABELS.get((group, kind))
    if labels is None:
        if label not in _META:
            raise UnsupportedField(
                f'"{label}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
    elif label not in labels:
        raise UnsupportedField(f"field label not supported: {label}")


def field_matcher(selector: str, group: str = "", kind: str = "") -> Matcher:
    """A matcher of `selector`; with a kind, only the field labels it supports."""
    terms: list[tuple[str, bool, str]] = []
    for term in _split(selector):
        for op in ("!=", "==", "="):
            if op in term:
                path, _, value = term.partition(op)
                terms.append((path.strip(), op != "!=", value.strip()))
                break
        else:
            raise ValueError(f"invalid field selector term {term!r}")
        if kind:
            _supported(group, kind, terms[-1][0])

    def read(obj: dict[str, Any], path: str) -> str:
        special = _PATHS.get((group, path))
        return special(obj) if special is not None else _field(obj, path)

    def matches(obj: dict[str, Any]) -> bool:
        return all((read(obj, path) == value) == equal for path, equal, value in terms)

    return matches
