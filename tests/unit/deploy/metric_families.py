"""The metric families the services define, read from their source: every call of a
prometheus_client metric class (Counter, Gauge, Histogram, Summary, Info, Enum) under
services/, with the names it exposes and its label names.

Reading the source instead of a registry sees every family, including those of modules
a test would not import and label sets that have no child yet.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("", "_count", "_sum", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    # None when the label names are not literal in the source.
    labels: frozenset[str] | None
    where: str

    @property
    def exposed(self) -> set[str]:
        """The sample names Prometheus stores for this family."""
        base = self.name.removesuffix("_total") if self.kind == "Counter" else self.name
        return {base + suffix for suffix in _SUFFIXES[self.kind]}


def _metric_classes(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Local names bound to prometheus_client's classes, and names of the module itself."""
    classes: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
            for alias in node.names:
                if alias.name in _SUFFIXES:
                    classes[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "prometheus_client":
                    modules.add(alias.asname or alias.name)
    return classes, modules


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level `NAME = <expr>` bindings (for label lists held in a constant)."""
    bound: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                bound[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            bound[node.target.id] = node.value
    return bound


def _string(node: ast.expr | None, bound: dict[str, ast.expr]) -> str | None:
    if isinstance(node, ast.Name) and node.id in bound:
        node = bound[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _strings(node: ast.expr | None, bound: dict[str, ast.expr]) -> frozenset[str] | None:
    if node is None:
        return frozenset()
    if isinstance(node, ast.Name) and node.id in bound:
        node = bound[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        values = [_string(element, bound) for element in node.elts]
        if all(value is not None for value in values):
            return frozenset(value for value in values if value is not None)
    return None


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    """The argument given by `keyword`, else at `position` (None: keyword only)."""
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _full_name(call: ast.Call, bound: dict[str, ast.expr]) -> str | None:
    """prometheus_client's name: namespace_subsystem_name, plus _unit unless present."""
    name = _string(_argument(call, 0, "name"), bound)
    if name is None:
        return None
    parts = [
        _string(_argument(call, None, keyword), bound) or ""
        for keyword in ("namespace", "subsystem")
    ]
    full = "_".join(part for part in (*parts, name) if part)
    unit = _string(_argument(call, None, "unit"), bound)
    if unit and not full.endswith("_" + unit):
        full += "_" + unit
    return full


def families(root: Path) -> tuple[list[Family], list[str]]:
    """Every family defined under `root`, and the calls whose name is not a literal (the
    caller should fail on those: their names cannot be checked)."""
    found: list[Family] = []
    unreadable: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        classes, modules = _metric_classes(tree)
        if not classes and not modules:
            continue
        bound = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kind = None
            if isinstance(func, ast.Name):
                kind = classes.get(func.id)
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in modules
                and func.attr in _SUFFIXES
            ):
                kind = func.attr
            if kind is None:
                continue
            where = f"{path.relative_to(root.parent)}:{node.lineno}"
            name = _full_name(node, bound)
            if name is None:
                unreadable.append(where)
                continue
            labels = _strings(_argument(node, 2, "labelnames"), bound)
            found.append(Family(name, kind, labels, where))
    return found, unreadable
