"""The prometheus toolset: six read-only tools over Prometheus' HTTP API.

`prometheus_query`, `prometheus_query_range`, `prometheus_alerts`, `prometheus_rules`,
`prometheus_series` and `prometheus_label_values` (contract.md gives their results).
Configured from the environment: `PROMETHEUS_URL` (the server's root, http or https,
a path prefix allowed) and, optionally, `PROMETHEUS_TOKEN` sent as a bearer token; no
URL, no toolset.

The tool service checks arguments against `parameters` before `run`; `run` still reads
them defensively, as analyzers and tests call it directly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from services.common.errors import InvalidArgument
from services.common.settings import SettingsError
from services.common.text_checks import shown
from services.tool.toolsets.base import ToolsetTool
from services.tool.toolsets.prometheus_api import DEFAULT_TIMEOUT_SECONDS, PrometheusApi
from services.tool.toolsets.prometheus_shape import (
    alerts_result,
    instant_result,
    label_values_result,
    range_result,
    rules_result,
    series_result,
)
from services.tool.toolsets.prometheus_time import format_number, parse_time, range_window

NAME = "prometheus"
URL_VARIABLE = "PROMETHEUS_URL"
TOKEN_VARIABLE = "PROMETHEUS_TOKEN"
# Longest PromQL accepted (alert expressions are far shorter).
MAX_QUERY_CHARS = 4096
# Series kept from an instant query and from a range query (each up to 100 points).
MAX_INSTANT_SERIES = 50
MAX_RANGE_SERIES = 20
# `limit` of series and label-value lookups: at most, and when not given.
MAX_LIMIT = 200
DEFAULT_SERIES_LIMIT = 50
DEFAULT_VALUES_LIMIT = 100
# Prometheus label names (`__name__` included).
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_TIME = {
    "type": ["string", "number"],
    "maxLength": 64,
    "description": "RFC 3339 ('2024-05-01T10:00:00Z'), unix seconds, 'now', or relative "
    "to now ('-15m', 'now-2h').",
}
_QUERY = {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}
_MATCH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "description": "A series selector: 'up{job=\"api\"}', '{__name__=~\"http_.*\"}'.",
}


def _limit(default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default}


def _schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _text(arguments: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument.for_field(name, "is required")
    if len(value) > max_chars:
        raise InvalidArgument.for_field(name, f"is longer than {max_chars} characters")
    return value


def _optional(arguments: Mapping[str, Any], name: str) -> Any:
    value = arguments.get(name)
    if value is not None and not isinstance(value, str | int | float):
        raise InvalidArgument.for_field(name, "must be a string or a number")
    return value


def _count(arguments: Mapping[str, Any], default: int) -> int:
    value = arguments.get("limit", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidArgument.for_field("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return value


class PrometheusToolset:
    """The toolset over one Prometheus server."""

    def __init__(self, api: PrometheusApi, clock: Callable[[], float] = time.time) -> None:
        self._api = api
        self._clock = clock

    @property
    def name(self) -> str:
        return NAME

    @property
    def backend(self) -> str:
        return self._api.backend

    async def close(self) -> None:
        await self._api.close()

    def tools(self) -> Sequence[ToolsetTool]:
        narrow = "narrow the query with label matchers or aggregate it (sum by, topk)"
        return (
            ToolsetTool(
                name="prometheus_query",
                description="Evaluate a PromQL expression at one instant (now by default); "
                f"returns each series' labels and value (at most {MAX_INSTANT_SERIES} series).",
                parameters=_schema({"query": _QUERY, "time": _TIME}, ["query"]),
                run=self.query,
                narrowing_hint=narrow,
            ),
            ToolsetTool(
                name="prometheus_query_range",
                description="Evaluate a PromQL expression over a time range (the last hour by "
                "default); returns at most 100 points per series with min, max and last "
                f"(at most {MAX_RANGE_SERIES} series). A step that would give more points "
                "is widened.",
                parameters=_schema(
                    {
                        "query": _QUERY,
                        "start": _TIME,
                        "end": _TIME,
                        "step": {
                            "type": ["string", "number"],
                            "maxLength": 32,
                            "description": "Resolution: '30s', '5m' or seconds.",
                        },
                    },
                    ["query"],
                ),
                run=self.query_range,
                narrowing_hint=narrow + ", or shorten the range",
            ),
            ToolsetTool(
                name="prometheus_alerts",
                description="The alerts now firing or pending in Prometheus, with labels, "
                "annotations, since when and the value that triggered them.",
                parameters=_schema({}),
                run=self.alerts,
                narrowing_hint='use prometheus_query with ALERTS{alertname="..."}',
            ),
            ToolsetTool(
                name="prometheus_rules",
                description="Prometheus' alerting and recording rules by group: expression, "
                "state, health, labels and annotations.",
                parameters=_schema({"type": {"type": "string", "enum": ["alert", "record"]}}),
                run=self.rules,
                narrowing_hint="pass type 'alert' or 'record'",
            ),
            ToolsetTool(
                name="prometheus_series",
                description="The label sets of the series matching a selector (which series "
                "exist, with which labels).",
                parameters=_schema(
                    {"match": _MATCH, "limit": _limit(DEFAULT_SERIES_LIMIT)}, ["match"]
                ),
                run=self.series,
                narrowing_hint="narrow match with more label matchers or lower limit",
            ),
            ToolsetTool(
                name="prometheus_label_values",
                description="The values a label takes (all series, or those matching "
                "`match`): which jobs, namespaces, pods exist.",
                parameters=_schema(
                    {
                        "label": {"type": "string", "minLength": 1, "maxLength": 128},
                        "match": _MATCH,
                        "limit": _limit(DEFAULT_VALUES_LIMIT),
                    },
                    ["label"],
                ),
                run=self.label_values,
                narrowing_hint="pass match to narrow the series, or lower limit",
            ),
        )

    def _deadline(self) -> tuple[str, str]:
        """Prometheus' own `timeout` parameter: it stops work nobody will read."""
        return ("timeout", format_number(self._api.timeout) + "s")

    async def query(self, arguments: dict[str, Any]) -> Any:
        query = _text(arguments, "query", MAX_QUERY_CHARS)
        when = _optional(arguments, "time")
        form = [("query", query), self._deadline()]
        if when is not None:
            form.append(("time", format_number(parse_time(when, "time", self._clock()))))
        data = await self._api.post("/api/v1/query", form)
        return instant_result(query, data, MAX_INSTANT_SERIES)

    async def query_range(self, arguments: dict[str, Any]) -> Any:
        query = _text(arguments, "query", MAX_QUERY_CHARS)
        window = range_window(
            _optional(arguments, "start"),
            _optional(arguments, "end"),
            _optional(arguments, "step"),
            self._clock(),
        )
        form = [
            ("query", query),
            ("start", format_number(window.start)),
            ("end", format_number(window.end)),
            ("step", format_number(window.step)),
            self._deadline(),
        ]
        data = await self._api.post("/api/v1/query_range", form)
        return range_result(query, window.step, data, MAX_RANGE_SERIES)

    async def alerts(self, arguments: dict[str, Any]) -> Any:
        return alerts_result(await self._api.get("/api/v1/alerts"))

    async def rules(self, arguments: dict[str, Any]) -> Any:
        rule_type = arguments.get("type")
        if rule_type not in (None, "alert", "record"):
            raise InvalidArgument.for_field("type", "must be 'alert' or 'record'")
        params = [("type", rule_type)] if rule_type else []
        return rules_result(await self._api.get("/api/v1/rules", params), rule_type)

    async def series(self, arguments: dict[str, Any]) -> Any:
        match = _text(arguments, "match", 1024)
        limit = _count(arguments, DEFAULT_SERIES_LIMIT)
        # `limit` is honoured by newer servers (one more than kept shows a cut); older
        # ones ignore it and the result is cut here.
        form = [("match[]", match), ("limit", str(limit + 1))]
        return series_result(await self._api.post("/api/v1/series", form), limit)

    async def label_values(self, arguments: dict[str, Any]) -> Any:
        label = _text(arguments, "label", 128)
        if not _LABEL_NAME.fullmatch(label):
            raise InvalidArgument.for_field("label", f"{shown(label)} is not a label name")
        limit = _count(arguments, DEFAULT_VALUES_LIMIT)
        params = [("limit", str(limit + 1))]
        if arguments.get("match") is not None:
            params.append(("match[]", _text(arguments, "match", 1024)))
        data = await self._api.get(f"/api/v1/label/{label}/values", params)
        return label_values_result(label, data, limit)


def _checked_url(url: str) -> str:
    """`PROMETHEUS_URL` if it is an http(s) URL with a host; SettingsError naming the problem
    otherwise (a deployment mistake, reported at startup)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise SettingsError(f"{URL_VARIABLE} is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise SettingsError(f"{URL_VARIABLE} must be an http:// or https:// URL")
    if not parsed.host:
        raise SettingsError(f"{URL_VARIABLE} has no host")
    if parsed.query or parsed.fragment:
        raise SettingsError(f"{URL_VARIABLE} must be the server's root, without query or fragment")
    if parsed.userinfo:
        raise SettingsError(f"{URL_VARIABLE} must not hold credentials; use {TOKEN_VARIABLE}")
    return url


def from_env(
    environ: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PrometheusToolset | None:
    """The toolset `PROMETHEUS_URL` (and `PROMETHEUS_TOKEN`) describe; None when the URL
    is unset or empty; SettingsError when it is not an http(s) URL with a host."""
    url = environ.get(URL_VARIABLE, "").strip()
    if not url:
        return None
    token = environ.get(TOKEN_VARIABLE, "").strip() or None
    api = PrometheusApi(_checked_url(url), token, timeout=timeout, transport=transport)
    return PrometheusToolset(api)
