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
    parts, depth, current = [], 0, []
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


def field_matcher(selector: str) -> Matcher:
    terms: list[tuple[str, bool, str]] = []
    for term in _split(selector):
        for op in ("!=", "==", "="):
            if op in term:
                path, _, value = term.partition(op)
                terms.append((path.strip(), op != "!=", value.strip()))
                break
        else:
            raise ValueError(f"invalid field selector term {term!r}")

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field(obj, path) == value) == equal for path, equal, value in terms)

    return matches
