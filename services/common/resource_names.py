"""Resource names `{collection}/{id}`: building them and reading the id back out, with
the same field violations for every kind of resource."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from services.common.validation import Violations


@dataclass(frozen=True)
class ResourceNames:
    """`collection` is the plural (`sessions`), `singular` the name shown in the
    pattern of an error (`sessions/{session}`); ids must match `id_pattern`."""

    collection: str
    singular: str
    id_pattern: str

    @functools.cached_property
    def _id(self) -> re.Pattern[str]:
        return re.compile(self.id_pattern)

    def name(self, resource_id: str) -> str:
        return f"{self.collection}/{resource_id}"

    def check_id(self, violations: Violations, field: str, resource_id: str) -> None:
        if not resource_id:
            violations.add(field, "is required")
        elif self._id.fullmatch(resource_id) is None:
            violations.add(field, f"must match {self.id_pattern}")

    def parse(self, violations: Violations, field: str, name: str) -> str:
        """The id in `{collection}/{id}`; a violation (and "") when `name` is not one."""
        if not name:
            violations.add(field, "is required")
            return ""
        resource_id = name.removeprefix(f"{self.collection}/")
        if resource_id == name or self._id.fullmatch(resource_id) is None:
            violations.add(
                field,
                f"must be {self.collection}/{{{self.singular}}} with the id matching "
                f"{self.id_pattern}",
            )
            return ""
        return resource_id
