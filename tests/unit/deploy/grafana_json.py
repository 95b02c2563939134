"""The queries of the committed Grafana dashboards (deploy/grafana/dashboards/*.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
# `label_values(metric, label)` and `label_values(label)`: Grafana's variable queries.
_LABEL_VALUES = re.compile(r"label_values\(\s*(?:(?P<selector>[^,]+?)\s*,\s*)?(?P<label>\w+)\s*\)")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves are left out."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries() -> list[Query]:
    """Every panel target's PromQL."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                found.append(Query(name, panel.get("title", "?"), target["expr"]))
    return found


def variable_selectors() -> list[Query]:
    """The metric selectors of the dashboards' `label_values(...)` variables."""
    found = []
    for name, dashboard in dashboards().items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.fullmatch(text.strip())
            assert match, f"{name}: variable {variable['name']} is not label_values(...)"
            if match["selector"]:
                found.append(Query(name, f"${variable['name']}", match["selector"]))
    return found
