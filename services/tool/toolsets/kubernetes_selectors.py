"""Label and field selectors from a caller, checked and turned into lightkube's form.

A caller (a model) writes selectors as kubectl takes them: `app=web,tier!=db`,
`env in (prod,staging)`, `!canary`; `status.phase=Running,spec.nodeName=node-a`. They
are parsed here rather than passed through, so a malformed one is INVALID_ARGUMENT
naming the term before any request is made, and what reaches the API is lightkube's
own encoding of checked parts (no control characters, bounded length, label keys and
values of the syntax Kubernetes allows).
"""

from __future__ import annotations

import re
from typing import Any

from lightkube import operators
from lightkube.core.client import FieldSelector, LabelSelector

from services.common.errors import InvalidArgument
from services.common.text_checks import has_control_characters

MAX_SELECTOR_CHARS = 1024
# lightkube's own selector types (a dict from key to operator).
LabelPairs = LabelSelector
FieldPairs = FieldSelector

# An optional DNS-subdomain prefix and a name (Kubernetes' qualified name).
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")
_SET_TERM = re.compile(r"^(\S+)\s+(in|notin)\s+\(([^()]*)\)$")


def _split(selector: str) -> list[str]:
    """Terms separated by commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return terms


def _checked(field: str, selector: str) -> list[str]:
    if len(selector) > MAX_SELECTOR_CHARS:
        raise InvalidArgument.for_field(
            field, f"is {len(selector)} characters long; at most {MAX_SELECTOR_CHARS} allowed"
        )
    if has_control_characters(selector):
        raise InvalidArgument.for_field(field, "must not contain control characters")
    terms = _split(selector)
    if any(not term for term in terms):
        raise InvalidArgument.for_field(field, "has an empty term (a stray comma?)")
    return terms


def _label_key(field: str, key: str) -> str:
    if not _LABEL_KEY.match(key) or len(key) > 316:
        raise InvalidArgument.for_field(field, f"'{key[:64]}' is not a valid label key")
    return key


def _label_value(field: str, value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise InvalidArgument.for_field(
            field,
            f"'{value[:64]}' is not a valid label value (at most 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit)",
        )
    return value


def _label_term(field: str, term: str) -> tuple[str, operators.Operator[Any]]:
    found = _SET_TERM.match(term)
    if found:
        key = _label_key(field, found.group(1))
        values = [_label_value(field, v.strip()) for v in found.group(3).split(",")]
        maker = operators.in_ if found.group(2) == "in" else operators.not_in
        return key, maker(values)
    for symbol in ("!=", "==", "="):
        if symbol in term:
            key, _, value = term.partition(symbol)
            key, value = _label_key(field, key.strip()), _label_value(field, value.strip())
            maker2 = operators.not_equal if symbol == "!=" else operators.equal
            return key, maker2(value)
    if term.startswith("!"):
        return _label_key(field, term[1:].strip()), operators.not_exists()
    return _label_key(field, term), operators.exists()


def _unique(field: str, key: str, pairs: dict[str, Any]) -> None:
    if key in pairs:
        raise InvalidArgument.for_field(field, f"'{key[:64]}' appears twice; use one term per key")


def label_selector(field: str, selector: str | None) -> LabelPairs | None:
    """`selector` as lightkube label pairs; None when not given."""
    if not selector:
        return None
    pairs: LabelPairs = {}
    for term in _checked(field, selector):
        key, operator = _label_term(field, term)
        _unique(field, key, pairs)
        pairs[key] = operator
    return pairs


# The field labels the API server supports for pods (any other is refused with 400).
POD_FIELD_LABELS = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)


def pod_field_hint(said: str) -> str:
    """Advice on a pod field selector the API server refused ("" for other refusals)."""
    if "field label not supported" not in said and "not a known field selector" not in said:
        return ""
    return "pods can be selected by the fields " + ", ".join(POD_FIELD_LABELS)


def field_selector(field: str, selector: str | None) -> FieldPairs | None:
    """`selector` as lightkube field pairs (`=`, `==`, `!=` only); None when not given."""
    if not selector:
        return None
    pairs: FieldPairs = {}
    for term in _checked(field, selector):
        symbol = next((s for s in ("!=", "==", "=") if s in term), None)
        if symbol is None:
            raise InvalidArgument.for_field(
                field, f"term '{term[:64]}' must be path=value, path==value or path!=value"
            )
        path, _, value = term.partition(symbol)
        path, value = path.strip(), value.strip()
        if not _FIELD_PATH.match(path):
            raise InvalidArgument.for_field(field, f"'{path[:64]}' is not a field path")
        if any(c in value for c in "(),="):
            raise InvalidArgument.for_field(field, f"the value of '{path}' has reserved characters")
        _unique(field, path, pairs)
        pairs[path] = operators.not_equal(value) if symbol == "!=" else operators.equal(value)
    return pairs
