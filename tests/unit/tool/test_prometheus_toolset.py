"""The prometheus toolset against a scripted Prometheus (httpx.MockTransport): the
requests it makes, how it shapes answers, and how failures become errors.

The real server is exercised in tests/integration/test_prometheus_toolset.py; these
tests cover what a real Prometheus will not do on demand (fail, time out, refuse a bearer
token, return more than the toolset keeps).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import jsonschema
import pytest

from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.settings import SettingsError
from services.tool.toolsets.base import Toolset
from services.tool.toolsets.prometheus import PrometheusToolset, from_env
from services.tool.toolsets.prometheus_api import MAX_ANSWER_BYTES, PrometheusApi

NOW = 1_714_557_600.0
TOKEN = "prom-token-s3cr3t-value"
Handler = Callable[[httpx.Request], httpx.Response]


def success(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def api_error(status: int, kind: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "errorType": kind, "error": message})


class Scripted:
    """A Prometheus whose answer the test sets; it records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: success({"resultType": "vector", "result": []})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def form(self, index: int = -1) -> dict[str, list[str]]:
        request = self.requests[index]
        text = request.content.decode() if request.method == "POST" else request.url.query.decode()
        return parse_qs(text)


@pytest.fixture
def scripted() -> Scripted:
    return Scripted()


def toolset_over(scripted: Scripted, env: dict[str, str] | None = None) -> PrometheusToolset:
    """The toolset `env` describes (through `from_env`), its requests answered by `scripted`."""
    toolset = from_env(
        env or {"PROMETHEUS_URL": "http://prom.example:9090/prefix/"},
        transport=httpx.MockTransport(scripted),
    )
    assert toolset is not None
    return toolset


@pytest.fixture
async def toolset(scripted: Scripted) -> AsyncIterator[PrometheusToolset]:
    """The toolset over `scripted` at a fixed now (NOW)."""
    api = PrometheusApi("http://prom.example:9090/prefix/", transport=httpx.MockTransport(scripted))
    toolset = PrometheusToolset(api, clock=lambda: NOW)
    yield toolset
    await toolset.close()


def tool(toolset: PrometheusToolset, name: str) -> Any:
    return next(t for t in toolset.tools() if t.name == name)


def test_from_env_needs_a_url_and_checks_it() -> None:
    assert from_env({}) is None
    assert from_env({"PROMETHEUS_URL": "  "}) is None
    for bad, says in [
        ("ftp://prom:9090", "http:// or https://"),
        ("http://", "no host"),
        ("prom:9090", "http:// or https://"),
        ("http://user:pw@prom:9090", "must not hold credentials"),
        ("http://prom:9090/?x=1", "without query"),
    ]:
        with pytest.raises(SettingsError, match=says) as caught:
            from_env({"PROMETHEUS_URL": bad})
        assert "pw" not in str(caught.value)


def test_backend_is_host_and_port() -> None:
    for url, backend in [
        ("http://prom", "prom:80"),
        ("https://prom/prefix", "prom:443"),
        ("http://10.0.0.5:9090", "10.0.0.5:9090"),
        ("http://[::1]:9090", "[::1]:9090"),
    ]:
        assert PrometheusApi(url).backend == backend


async def test_tools_have_closed_bounded_schemas(toolset: PrometheusToolset) -> None:
    as_toolset: Toolset = toolset  # mypy checks the Protocol is met
    assert as_toolset.name == "prometheus"
    names = [t.name for t in toolset.tools()]
    assert names == [
        "prometheus_query",
        "prometheus_query_range",
        "prometheus_alerts",
        "prometheus_rules",
        "prometheus_series",
        "prometheus_label_values",
    ]
    assert toolset.name == "prometheus"
    assert toolset.backend == "prom.example:9090"
    for t in toolset.tools():
        jsonschema.Draft202012Validator.check_schema(t.parameters)
        assert t.parameters["additionalProperties"] is False
        assert t.narrowing_hint
        for prop in t.parameters["properties"].values():
            assert "maxLength" in prop or "maximum" in prop or "enum" in prop
    validator = jsonschema.Draft202012Validator(tool(toolset, "prometheus_series").parameters)
    assert not validator.is_valid({"match": "up", "limit": 201})
    assert not validator.is_valid({"match": "up", "extra": 1})


async def test_instant_query_posts_the_form_and_keeps_values_as_sent(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: success(
        {
            "resultType": "vector",
            "result": [
                {"metric": {"job": "api", "code": "500"}, "value": [NOW, "0.93"]},
                {"metric": {"job": "web"}, "value": [NOW, "NaN"]},
            ],
        }
    )
    result = await tool(toolset, "prometheus_query").run(
        {"query": "rate(http_errors_total[5m])", "time": "-5m"}
    )
    assert result == {
        "query": "rate(http_errors_total[5m])",
        "result_type": "vector",
        "series": [
            {"metric": {"code": "500", "job": "api"}, "value": "0.93"},
            {"metric": {"job": "web"}, "value": "NaN"},
        ],
        "truncated": False,
    }
    request = scripted.requests[0]
    assert (request.method, request.url.path) == ("POST", "/prefix/api/v1/query")
    assert scripted.form() == {
        "query": ["rate(http_errors_total[5m])"],
        "time": [str(int(NOW - 300))],
        "timeout": ["30s"],
    }
    assert "authorization" not in request.headers


async def test_instant_query_scalar_and_matrix_results(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: success({"resultType": "scalar", "result": [NOW, "42"]})
    result = await tool(toolset, "prometheus_query").run({"query": "scalar(up)"})
    assert result["series"] == [{"metric": {}, "value": "42"}]
    values = [[NOW - 15 * i, str(i)] for i in range(300, -1, -1)]
    scripted.handler = lambda request: success(
        {"resultType": "matrix", "result": [{"metric": {"job": "a"}, "values": values}]}
    )
    result = await tool(toolset, "prometheus_query").run({"query": "up[75m]"})
    (series,) = result["series"]
    assert series["value"] == "0"
    assert len(series["points"]) == 100
    assert series["points"][-1] == [int(NOW), "0"]


async def test_instant_query_keeps_at_most_50_series(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: success(
        {
            "resultType": "vector",
            "result": [{"metric": {"i": str(i)}, "value": [NOW, "1"]} for i in range(120)],
        }
    )
    result = await tool(toolset, "prometheus_query").run({"query": "up"})
    assert len(result["series"]) == 50
    assert result["series"][0]["metric"] == {"i": "0"}
    assert result["truncated"] is True


async def test_range_query_widens_the_step_and_summarises(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    values = [[NOW - 3600 + 60 * i, str(i % 7)] for i in range(61)]
    values[3][1] = "NaN"
    scripted.handler = lambda request: success(
        {"resultType": "matrix", "result": [{"metric": {"job": "api"}, "values": values}]}
    )
    result = await tool(toolset, "prometheus_query_range").run(
        {"query": "up", "start": "2024-05-01T09:00:00Z", "step": "1s"}
    )
    form = scripted.form()
    # Moved back by less than a step, so that the last point is at the end.
    assert form["start"] == [str(int(NOW - 98 * 37))]
    assert form["end"] == [str(int(NOW))]
    assert form["step"] == ["37"]
    assert result["step_seconds"] == 37
    (series,) = result["series"]
    assert series["metric"] == {"job": "api"}
    assert (series["min"], series["max"], series["last"]) == ("0", "6", str(60 % 7))
    assert series["points"][0] == [int(NOW - 3600), "0"]


async def test_range_query_downsamples_a_backend_that_sent_too_many_points(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    values = [[NOW - 3600 + i, str(i)] for i in range(3601)]
    scripted.handler = lambda request: success(
        {
            "resultType": "matrix",
            "result": [{"metric": {"s": str(s)}, "values": values} for s in range(25)],
        }
    )
    result = await tool(toolset, "prometheus_query_range").run({"query": "x"})
    assert result["truncated"] is True
    assert len(result["series"]) == 20
    for series in result["series"]:
        assert len(series["points"]) == 100
        assert series["points"][-1] == [int(NOW), "3600"]
        assert (series["min"], series["max"]) == ("0", "3600")


async def test_alerts_firing_first_with_labels_and_annotations(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    def alert(name: str, state: str) -> dict[str, Any]:
        return {
            "labels": {"alertname": name, "severity": "page"},
            "annotations": {"summary": f"{name} is " + "x" * 5000},
            "state": state,
            "activeAt": "2024-05-01T09:58:00Z",
            "value": "1e+00",
        }

    scripted.handler = lambda request: success(
        {"alerts": [alert("Slow", "pending"), alert("Down", "firing")]}
    )
    result = await tool(toolset, "prometheus_alerts").run({})
    assert [(a["name"], a["state"]) for a in result["alerts"]] == [
        ("Down", "firing"),
        ("Slow", "pending"),
    ]
    first = result["alerts"][0]
    assert first["labels"] == {"alertname": "Down", "severity": "page"}
    assert first["active_at"] == "2024-05-01T09:58:00Z"
    assert first["value"] == "1e+00"
    assert first["annotations"]["summary"].startswith("Down is xx")
    assert len(first["annotations"]["summary"]) <= 1024
    assert scripted.requests[0].url.path == "/prefix/api/v1/alerts"


async def test_rules_typed_filtered_and_errors_kept(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: success(
        {
            "groups": [
                {
                    "name": "api",
                    "file": "/etc/prometheus/rules.yml",
                    "rules": [
                        {
                            "name": "job:errors:rate5m",
                            "query": "sum by (job) (rate(errors_total[5m]))",
                            "type": "recording",
                            "health": "ok",
                            "labels": {},
                        },
                        {
                            "name": "HighErrors",
                            "query": "job:errors:rate5m > 1",
                            "type": "alerting",
                            "state": "firing",
                            "health": "err",
                            "lastError": "many-to-many matching not allowed",
                            "labels": {"severity": "page"},
                            "annotations": {"summary": "errors"},
                            "alerts": [{"huge": "not kept"}],
                        },
                    ],
                }
            ]
        }
    )
    result = await tool(toolset, "prometheus_rules").run({"type": "alert"})
    assert scripted.form() == {"type": ["alert"]}
    assert result == {
        "groups": [
            {
                "name": "api",
                "rules": [
                    {
                        "name": "HighErrors",
                        "type": "alert",
                        "query": "job:errors:rate5m > 1",
                        "state": "firing",
                        "health": "err",
                        "labels": {"severity": "page"},
                        "annotations": {"summary": "errors"},
                        "last_error": "many-to-many matching not allowed",
                    }
                ],
            }
        ],
        "truncated": False,
    }
    everything = await tool(toolset, "prometheus_rules").run({})
    assert [r["type"] for r in everything["groups"][0]["rules"]] == ["record", "alert"]
    assert everything["groups"][0]["rules"][0]["state"] == ""


async def test_series_and_label_values_are_bounded(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: success(
        [{"__name__": "up", "job": "j" * 1000, "n": str(i)} for i in range(30)]
    )
    result = await tool(toolset, "prometheus_series").run({"match": 'up{job=~".+"}', "limit": 10})
    assert scripted.form() == {"match[]": ['up{job=~".+"}'], "limit": ["11"]}
    assert len(result["series"]) == 10
    assert result["truncated"] is True
    assert len(result["series"][0]["job"]) <= 256

    scripted.handler = lambda request: success([f"pod-{i}" for i in range(5)])
    result = await tool(toolset, "prometheus_label_values").run(
        {"label": "pod", "match": 'kube_pod_info{namespace="shop"}'}
    )
    assert result == {"label": "pod", "values": [f"pod-{i}" for i in range(5)], "truncated": False}
    request = scripted.requests[-1]
    assert (request.method, request.url.path) == ("GET", "/prefix/api/v1/label/pod/values")
    assert scripted.form()["match[]"] == ['kube_pod_info{namespace="shop"}']


async def test_label_names_are_checked_before_any_request(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    with pytest.raises(InvalidArgument, match="is not a label name"):
        await tool(toolset, "prometheus_label_values").run({"label": "../../admin"})
    with pytest.raises(InvalidArgument, match="start: must not be after end"):
        await tool(toolset, "prometheus_query_range").run(
            {"query": "up", "start": "now", "end": "-1h"}
        )
    assert scripted.requests == []


async def test_bearer_token_is_sent_and_a_refusal_never_quotes_it(scripted: Scripted) -> None:
    toolset = toolset_over(scripted, {"PROMETHEUS_URL": "https://prom", "PROMETHEUS_TOKEN": TOKEN})
    try:
        scripted.handler = lambda request: (
            success({"alerts": []})
            if request.headers.get("authorization") == f"Bearer {TOKEN}"
            else httpx.Response(401, text=f"bad token {request.headers.get('authorization')}")
        )
        assert await tool(toolset, "prometheus_alerts").run({}) == {
            "alerts": [],
            "truncated": False,
        }
        scripted.handler = lambda request: httpx.Response(403, text=f"denied {TOKEN}")
        with pytest.raises(PermissionDenied) as caught:
            await tool(toolset, "prometheus_alerts").run({})
        assert "refused the token (PROMETHEUS_TOKEN)" in caught.value.message
        assert TOKEN not in str(caught.value.to_status())
        scripted.handler = lambda request: api_error(400, "bad_data", f"echo {TOKEN}")
        with pytest.raises(InvalidArgument) as bad:
            await tool(toolset, "prometheus_query").run({"query": "up"})
        assert TOKEN not in bad.value.message
    finally:
        await toolset.close()


async def test_unauthorised_without_a_token_says_to_set_one(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    scripted.handler = lambda request: httpx.Response(401)
    with pytest.raises(PermissionDenied, match="requires a token"):
        await tool(toolset, "prometheus_alerts").run({})


@pytest.mark.parametrize(
    ("answer", "error", "says"),
    [
        (
            api_error(400, "bad_data", "1:4: parse error: unclosed left parenthesis"),
            InvalidArgument,
            "Prometheus refused the query: 1:4: parse error: unclosed left parenthesis",
        ),
        (
            api_error(422, "execution", "query processing would load too many samples"),
            InvalidArgument,
            "could not run the query: query processing would load too many samples",
        ),
        (api_error(503, "timeout", "query timed out"), DeadlineExceeded, "timed out running"),
        (api_error(404, "not_found", "no such rule"), NotFound, "no such rule"),
        (api_error(500, "internal", "disk\nfull"), Unavailable, "failed (HTTP 500, internal)"),
        (httpx.Response(503, text="upstream down"), Unavailable, "with HTTP 503"),
        (httpx.Response(200, text="<html>grafana</html>"), Unavailable, "not Prometheus' API"),
        (httpx.Response(404, text="no"), FailedPrecondition, "root of a Prometheus server"),
        (
            httpx.Response(302, headers={"location": "https://login"}),
            FailedPrecondition,
            "redirected",
        ),
    ],
)
async def test_failures_become_gateway_errors(
    scripted: Scripted,
    toolset: PrometheusToolset,
    answer: httpx.Response,
    error: type[Exception],
    says: str,
) -> None:
    scripted.handler = lambda request: answer
    with pytest.raises(error) as caught:
        await tool(toolset, "prometheus_query").run({"query": "up("})
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_unreachable_and_slow_prometheus(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    scripted.handler = refuse
    with pytest.raises(Unavailable, match=r"cannot reach Prometheus at prom\.example:9090"):
        await tool(toolset, "prometheus_alerts").run({})

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    scripted.handler = slow
    with pytest.raises(DeadlineExceeded, match="did not answer within 30s"):
        await tool(toolset, "prometheus_alerts").run({})


async def test_an_oversized_answer_is_refused_not_held(
    scripted: Scripted, toolset: PrometheusToolset
) -> None:
    big = json.dumps({"status": "success", "data": ["x" * 1024] * (MAX_ANSWER_BYTES // 1024)})
    scripted.handler = lambda request: httpx.Response(200, text=big)
    with pytest.raises(InvalidArgument, match="larger than 8 MiB; narrow the query"):
        await tool(toolset, "prometheus_series").run({"match": '{__name__=~".+"}'})
