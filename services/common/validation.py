"""Collects every problem with a request before answering, so the caller sees them all."""

from __future__ import annotations

from services.common.errors import FieldViolation, InvalidArgument


class Violations:
    """Accumulates field violations; `raise_if_any` raises one INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def require(self, condition: bool, field: str, description: str) -> None:
        if not condition:
            self.add(field, description)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument.from_violations(self.items)
