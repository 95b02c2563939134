"""A PrometheusRule (Prometheus Operator) holding the groups of the rule files.

deploy/prometheus/rules/*.yml are the rules `promtool` checks and tests and the compose
Prometheus loads; on Kubernetes the Operator loads rules from PrometheusRule objects
instead. Wrapping the same files' groups, unchanged, keeps one source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from services.launcher.k8s_manifests import Manifest, object_labels

RULE_NAME = "llm-gateway"
RULE_GLOB = "*.yml"


class RuleFileError(ValueError):
    """A rule file is not YAML, has no `groups` list, or repeats a group name."""


def rule_files(directory: Path) -> list[Path]:
    """The rule files, in name order (absent directory: none)."""
    return sorted(directory.glob(RULE_GLOB)) if directory.is_dir() else []


def _groups(path: Path) -> list[dict[str, Any]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RuleFileError(f"{path.name}: not valid YAML: {err}") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("name"), str) for g in groups
    ):
        raise RuleFileError(f"{path.name}: expected `groups:`, a list of named rule groups")
    return groups


def prometheus_rule(files: Sequence[Path]) -> Manifest | None:
    """One PrometheusRule with every file's groups in order; None without files."""
    if not files:
        return None
    groups: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in files:
        for group in _groups(path):
            name = group["name"]
            if name in seen:
                raise RuleFileError(f"{path.name}: group {name!r} is also in {seen[name]}")
            seen[name] = path.name
            groups.append(group)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": RULE_NAME, "labels": object_labels("prometheus-rules")},
        "spec": {"groups": groups},
    }
