"""Prometheus' answers trimmed to the prometheus toolset's result shapes (contract.md).

A result is read by a model and quoted by analyzers as evidence, so it keeps what
explains an alert (labels, values, states, annotations, rule expressions) as whole
string values, and nothing else. Every list is bounded and says when it was cut
(`truncated`); every string is clipped, so one huge label cannot fill the result.
Sample values stay the strings Prometheus sent (`"0.93"`, `"NaN"`, `"+Inf"`): they are
what a query showed, and a float round trip would change them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from services.common.status_bounds import clip_chars
from services.tool.toolsets.prometheus_time import MAX_POINTS, downsample

# Characters kept of a label value, an annotation, a rule's expression.
MAX_LABEL_CHARS = 256
MAX_ANNOTATION_CHARS = 1024
MAX_EXPRESSION_CHARS = 2048
# Labels kept per series (real series have a dozen or two).
MAX_LABELS = 64
# Alerts, rule groups and rules kept.
MAX_ALERTS = 100
MAX_GROUPS = 50
MAX_RULES = 200


def labels(value: Any, limit: int = MAX_LABEL_CHARS) -> dict[str, str]:
    """A label set (or annotations) with clipped values, at most `MAX_LABELS` of them."""
    if not isinstance(value, Mapping):
        return {}
    items = sorted(value.items())[:MAX_LABELS]
    return {clip_chars(str(k), MAX_LABEL_CHARS): clip_chars(str(v), limit) for k, v in items}


def _timestamp(value: Any) -> int | float:
    """Prometheus' sample time (`1714557600.5`) as a JSON number, whole seconds as ints."""
    seconds = float(value)
    return int(seconds) if seconds.is_integer() else seconds


def _sample(pair: Any) -> tuple[int | float, str] | None:
    """A `[time, "value"]` pair; None for anything else (a native histogram sample)."""
    if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str):
        return _timestamp(pair[0]), pair[1]
    return None


def _points(values: Any) -> list[list[int | float | str]]:
    samples = [s for s in map(_sample, values if isinstance(values, list) else []) if s]
    return [[t, v] for t, v in downsample(samples, MAX_POINTS)]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def summary(points: list[list[int | float | str]]) -> dict[str, str]:
    """min, max and last of a series as Prometheus wrote them; NaN samples are skipped
    for min and max (they compare with nothing), and an empty series gives `""`."""
    values = [str(p[1]) for p in points]
    numeric = [(_number(v), v) for v in values if not math.isnan(_number(v))]
    return {
        "min": min(numeric, key=lambda nv: nv[0])[1] if numeric else (values[0] if values else ""),
        "max": max(numeric, key=lambda nv: nv[0])[1] if numeric else (values[0] if values else ""),
        "last": values[-1] if values else "",
    }


def instant_result(query: str, data: Any, limit: int) -> dict[str, Any]:
    """`/api/v1/query`'s data as {"query","result_type","series","truncated"}.

    A vector gives one value per series; a scalar or string one series without labels;
    a matrix (a range selector queried at an instant) each series' last value and its
    points, downsampled."""
    kind = str(data.get("resultType", "")) if isinstance(data, dict) else ""
    raw = data.get("result") if isinstance(data, dict) else None
    series: list[dict[str, Any]] = []
    if kind in ("scalar", "string"):
        sample = _sample(raw)
        if sample:
            series.append({"metric": {}, "value": sample[1]})
        raw = [raw]
    elif isinstance(raw, list):
        for item in raw[:limit]:
            if not isinstance(item, dict):
                continue
            if kind == "matrix":
                points = _points(item.get("values"))
                series.append(
                    {
                        "metric": labels(item.get("metric")),
                        "value": summary(points)["last"],
                        "points": points,
                    }
                )
            else:
                sample = _sample(item.get("value"))
                series.append(
                    {"metric": labels(item.get("metric")), "value": sample[1] if sample else ""}
                )
    else:
        raw = []
    return {
        "query": query,
        "result_type": kind,
        "series": series,
        "truncated": len(raw) > limit,
    }


def range_result(query: str, step: float, data: Any, limit: int) -> dict[str, Any]:
    """`/api/v1/query_range`'s matrix as {"query","step_seconds","series","truncated"}."""
    raw = data.get("result") if isinstance(data, dict) else None
    raw = raw if isinstance(raw, list) else []
    series = []
    for item in raw[:limit]:
        if isinstance(item, dict):
            points = _points(item.get("values"))
            series.append(
                {"metric": labels(item.get("metric")), "points": points, **summary(points)}
            )
    return {
        "query": query,
        "step_seconds": _timestamp(step),
        "series": series,
        "truncated": len(raw) > limit,
    }


_STATE_ORDER = {"firing": 0, "pending": 1}


def alerts_result(data: Any) -> dict[str, Any]:
    """`/api/v1/alerts` as {"alerts":[...],"truncated"}: firing first, then pending, each by
    name, so a cut keeps the ones that matter."""
    raw = data.get("alerts") if isinstance(data, dict) else None
    items = [a for a in (raw if isinstance(raw, list) else []) if isinstance(a, dict)]
    alerts: list[dict[str, Any]] = [
        {
            "name": labels(a.get("labels")).get("alertname", ""),
            "state": str(a.get("state", "")),
            "labels": labels(a.get("labels")),
            "annotations": labels(a.get("annotations"), MAX_ANNOTATION_CHARS),
            "active_at": str(a.get("activeAt", "")),
            "value": str(a.get("value", "")),
        }
        for a in items
    ]
    alerts.sort(key=lambda a: (_STATE_ORDER.get(str(a["state"]), 2), a["name"], str(a["labels"])))
    return {"alerts": alerts[:MAX_ALERTS], "truncated": len(alerts) > MAX_ALERTS}


_RULE_TYPES = {"alerting": "alert", "recording": "record"}


def _rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "name": clip_chars(str(rule.get("name", "")), MAX_LABEL_CHARS),
        "type": _RULE_TYPES.get(str(rule.get("type", "")), str(rule.get("type", ""))),
        "query": clip_chars(str(rule.get("query", "")), MAX_EXPRESSION_CHARS),
        "state": str(rule.get("state", "")),
        "health": str(rule.get("health", "")),
        "labels": labels(rule.get("labels")),
        "annotations": labels(rule.get("annotations"), MAX_ANNOTATION_CHARS),
    }
    if rule.get("lastError"):
        shaped["last_error"] = clip_chars(str(rule["lastError"]), MAX_ANNOTATION_CHARS)
    return shaped


def rules_result(data: Any, rule_type: str | None) -> dict[str, Any]:
    """`/api/v1/rules` as {"groups":[{"name","rules":[...]}],"truncated"}, only rules of
    `rule_type` (`alert`, `record`) when given; at most `MAX_GROUPS` groups and
    `MAX_RULES` rules in all."""
    raw = data.get("groups") if isinstance(data, dict) else None
    groups: list[dict[str, Any]] = []
    kept = 0
    truncated = False
    for group in raw if isinstance(raw, list) else []:
        if not isinstance(group, dict):
            continue
        rules = [
            _rule(r)
            for r in group.get("rules") or []
            if isinstance(r, dict)
            and (rule_type is None or _RULE_TYPES.get(str(r.get("type"))) == rule_type)
        ]
        if not rules:
            continue
        room = MAX_RULES - kept
        if len(groups) == MAX_GROUPS or room <= 0:
            truncated = True
            break
        if len(rules) > room:
            rules = rules[:room]
            truncated = True
        kept += len(rules)
        groups.append(
            {"name": clip_chars(str(group.get("name", "")), MAX_LABEL_CHARS), "rules": rules}
        )
    return {"groups": groups, "truncated": truncated}


def series_result(data: Any, limit: int) -> dict[str, Any]:
    """`/api/v1/series` as {"series":[{labels}],"truncated"}."""
    raw = data if isinstance(data, list) else []
    return {
        "series": [labels(s) for s in raw[:limit] if isinstance(s, dict)],
        "truncated": len(raw) > limit,
    }


def label_values_result(label: str, data: Any, limit: int) -> dict[str, Any]:
    """`/api/v1/label/<label>/values` as {"label","values","truncated"} (sorted, as
    Prometheus sends them)."""
    raw = data if isinstance(data, list) else []
    return {
        "label": label,
        "values": [clip_chars(str(v), MAX_LABEL_CHARS) for v in raw[:limit]],
        "truncated": len(raw) > limit,
    }
