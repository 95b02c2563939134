"""The `tools:` section: defaults, validation with precise paths, cross-field checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.common.gateway_config import ConfigError, load_config, parse_config
from services.common.tool_config import ToolsConfig, parameters_problem

WEATHER: dict[str, Any] = {
    "name": "weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "http": {"method": "GET", "url_template": "http://127.0.0.1:9000/weather/{city}"},
}


def _tools(**section: Any) -> ToolsConfig:
    return parse_config({"tools": {"allowed_hosts": ["127.0.0.1"], **section}}).tools


def _problems(**section: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        _tools(**section)
    return dict(caught.value.violations)


def test_defaults() -> None:
    tools = parse_config({}).tools
    assert tools.allowed_hosts == [] and tools.definitions == []
    assert (tools.default_timeout_seconds, tools.max_output_bytes) == (10.0, 65536)
    assert (tools.retry.max_attempts, tools.breaker.consecutive_failures) == (3, 5)
    assert tools.downstream.search_url is None


def test_a_full_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """
tools:
  allowed_hosts: ["127.0.0.1", "search.internal", "*.agents.internal"]
  default_timeout_seconds: 3
  retry: {max_attempts: 2, initial_backoff_seconds: 0.05, max_backoff_seconds: 1}
  breaker: {consecutive_failures: 3, open_seconds: 10}
  downstream:
    search_url: http://search.internal:8000/
    agents_url: https://a.agents.internal
  definitions:
    - name: weather
      description: Current weather.
      parameters: {type: object, properties: {city: {type: string}}, required: [city]}
      http:
        method: GET
        url_template: "http://127.0.0.1:9000/weather/{city}"
        headers: {Authorization: "Bearer ${WEATHER_KEY}"}
      timeout_seconds: 2
      retry: {max_attempts: 1}
      allowed_consumers: [team-a]
      max_output_bytes: 4096
"""
    )
    tools = load_config(path, {"WEATHER_KEY": "k"}).tools
    assert tools.downstream.search_url == "http://search.internal:8000"
    weather = tools.definitions[0]
    assert weather.http.headers == {"Authorization": "Bearer k"}
    assert weather.retry is not None and weather.retry.max_attempts == 1
    assert weather.http.template.placeholders == ("city",)


def test_field_problems_name_their_path() -> None:
    found = _problems(
        default_timeout_seconds=0,
        definitions=[
            {
                **WEATHER,
                "name": "no spaces allowed",
                "description": "",
                "http": {"method": "TRACE", "url_template": "http://127.0.0.1/{city}"},
                "max_output_bytes": 0,
            }
        ],
    )
    assert set(found) == {
        "tools.default_timeout_seconds",
        "tools.definitions.0.name",
        "tools.definitions.0.description",
        "tools.definitions.0.http.method",
        "tools.definitions.0.max_output_bytes",
    }


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://{host}/weather", "an argument may never choose the host"),
        ("ftp://127.0.0.1/weather", "http:// or https://"),
        ("http://127.0.0.1/a/../weather", "'..' path segments"),
        ("http://user:pw@127.0.0.1/weather", "user information"),
    ],
)
def test_url_templates_are_checked(url: str, problem: str) -> None:
    definition = {**WEATHER, "http": {"method": "GET", "url_template": url}}
    found = _problems(definitions=[definition])
    assert problem in found["tools.definitions.0.http.url_template"]


def test_hosts_must_be_allowed() -> None:
    found = _problems(
        allowed_hosts=["search.internal:8000"],
        downstream={"search_url": "http://search.internal:9000"},
        definitions=[WEATHER],
    )
    assert (
        "host 'search.internal:9000' is not in tools.allowed_hosts"
        in (found["tools.downstream.search_url"])
    )
    assert "host '127.0.0.1:9000'" in found["tools.definitions.0.http.url_template"]


def test_allow_list_entries_are_checked() -> None:
    found = _problems(allowed_hosts=["ok.internal", "not a host", "*.10.0.0.1", "h:99999"])
    assert set(found) == {
        "tools.allowed_hosts.1",
        "tools.allowed_hosts.2",
        "tools.allowed_hosts.3",
    }


def test_cross_field_checks() -> None:
    found = _problems(
        retry={"initial_backoff_seconds": 5, "max_backoff_seconds": 1},
        definitions=[
            {**WEATHER, "http": {**WEATHER["http"], "json_body": True}},
            {**WEATHER, "name": "town", "parameters": {"type": "object"}},
        ],
    )
    assert "exceeds" in found["tools.retry.initial_backoff_seconds"]
    assert "GET sends no body" in found["tools.definitions.0.http.json_body"]
    assert "must name a required property" in found["tools.definitions.1.http.url_template"]


def test_names_are_unique_and_not_built_in() -> None:
    found = _problems(
        definitions=[WEATHER, {**WEATHER}, {**WEATHER, "name": "search_corpus"}],
    )
    assert "repeats definitions.0" in found["tools.definitions.1.name"]
    assert "is a built-in tool" in found["tools.definitions.2.name"]


def test_headers_are_checked() -> None:
    http = {**WEATHER["http"], "headers": {"Host": "evil", "Bad Name": "x", "X-Ok": "a\r\nb"}}
    found = _problems(definitions=[{**WEATHER, "http": http}])
    assert set(found) == {
        "tools.definitions.0.http.headers.Host",
        "tools.definitions.0.http.headers",
        "tools.definitions.0.http.headers.X-Ok",
    }


def test_downstream_urls_are_base_urls() -> None:
    found = _problems(downstream={"agents_url": "http://127.0.0.1/{x}"})
    assert "without placeholders" in found["tools.downstream.agents_url"]


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ([], "must be a JSON Schema object"),
        ({"type": "array"}, "type: object"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "not a valid JSON Schema"),
        ({"type": "object", "minProperties": -1}, "not a valid JSON Schema"),
        ({"type": "object", "$ref": "https://example.com/s.json"}, "leaves the schema"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}}, "points to nothing"),
    ],
)
def test_parameters_must_be_an_object_schema(schema: Any, problem: str) -> None:
    found = parameters_problem(schema)
    assert found is not None and problem in found
    with pytest.raises(ConfigError) as caught:
        _tools(definitions=[{**WEATHER, "parameters": schema}])
    assert "tools.definitions.0.parameters" in str(caught.value)


def test_local_references_are_fine() -> None:
    schema = {
        "type": "object",
        "$defs": {"city": {"type": "string"}},
        "properties": {"city": {"$ref": "#/$defs/city"}},
        "required": ["city"],
    }
    assert parameters_problem(schema) is None
