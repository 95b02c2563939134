"""deploy/grafana: the committed dashboards are what the generator writes; every panel's
query parses (`promtool check rules` on a rule file made of them), spans
`$__rate_interval` in every rate and increase, and queries the data source the
dashboard's `datasource` variable selects; the provisioning files load them.

Whether the queries return data from a real Prometheus after traffic is checked by the
integration tier.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.deploy import grafana_json

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {"overview.json", "providers.json", "cost.json", "investigations.json"}
# Grafana's interval variables, as a rule file needs them (any valid duration will do).
_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\s*\(")


@pytest.fixture(scope="module")
def generator() -> Iterator[ModuleType]:
    """deploy/grafana/generate.py, imported as the script runs it (its folder on the path)."""
    sys.path.insert(0, str(GRAFANA))
    try:
        yield importlib.import_module("generate")
    finally:
        sys.path.remove(str(GRAFANA))


def _ranges_of_calls(expr: str) -> Iterator[tuple[str, str]]:
    """(function, range) for every range inside a rate/irate/increase call."""
    for match in _RANGE_FUNCTIONS.finditer(expr):
        depth, index = 1, match.end()
        while depth and index < len(expr):
            depth += {"(": 1, ")": -1}.get(expr[index], 0)
            index += 1
        for window in re.findall(r"\[([^\]]*)\]", expr[match.end() : index]):
            yield match.group(1), window


def test_the_committed_json_is_what_the_generator_writes(generator: ModuleType) -> None:
    rendered = generator.render()
    committed = {path.name: path.read_text() for path in grafana_json.DASHBOARDS.glob("*.json")}
    assert set(rendered) == set(committed) == EXPECTED
    stale = [name for name in rendered if rendered[name] != committed[name]]
    assert not stale, f"stale dashboards {stale}: run `python deploy/grafana/generate.py`"


def test_the_check_mode_reports_drift(generator: ModuleType, tmp_path: Path) -> None:
    """`--check` fails on a stale file and passes on a fresh one."""
    out = tmp_path / "dashboards"
    out.mkdir()
    for name, text in generator.render().items():
        (out / name).write_text(text)
    command = [sys.executable, str(GRAFANA / "generate.py"), "--check", "--out", str(out)]
    fresh = subprocess.run(command, capture_output=True, text=True, check=False)
    (out / "cost.json").write_text("{}\n")
    stale = subprocess.run(command, capture_output=True, text=True, check=False)
    assert fresh.returncode == 0, fresh.stderr
    assert stale.returncode == 1 and "cost.json" in stale.stderr


def test_dashboards_have_unique_uids_titles_and_described_panels() -> None:
    boards = grafana_json.dashboards()
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids) == len(EXPECTED)
    for name, board in boards.items():
        assert "llm-gateway" in board["tags"], name
        panels = list(grafana_json.panels(board))
        assert panels, name
        for panel in panels:
            assert panel["title"] and panel.get("description"), (name, panel.get("title"))
            assert panel["targets"], (name, panel["title"])


def test_every_query_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is missing: `make system-deps` installs Debian's prometheus"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    queries = grafana_json.queries()
    rules: list[dict[str, Any]] = []
    for index, query in enumerate(queries):
        expr = query.expr
        for variable, duration in _INTERVALS.items():
            expr = expr.replace(variable, duration)
        assert "$__" not in expr, f"{query.dashboard}: {query.panel}: unknown variable in {expr}"
        rules.append({"record": f"dashboard:query_{index}:expr", "expr": expr})
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        # Name the panels whose queries failed, not just the rule index.
        failing = {int(n) for n in re.findall(r"dashboard:query_(\d+):expr", result.stderr)}
        where = [f"{queries[n].dashboard}: {queries[n].panel}" for n in sorted(failing)]
        pytest.fail(f"queries promtool refuses: {where or result.stderr}\n{result.stderr}")


def test_rates_and_increases_span_the_rate_interval() -> None:
    spans = 0
    for query in grafana_json.queries():
        for function, window in _ranges_of_calls(query.expr):
            spans += 1
            assert window == "$__rate_interval", (
                f"{query.dashboard}: {query.panel}: {function}(...[{window}])"
            )
    assert spans > 0


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    for name, board in grafana_json.dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (name, variable["name"])
        for panel in grafana_json.panels(board):
            assert panel["datasource"] == DATASOURCE, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, (name, panel["title"])


def test_variables_used_by_queries_are_defined() -> None:
    builtin = {"__rate_interval", "__interval", "__range", "datasource"}
    for name, board in grafana_json.dashboards().items():
        defined = {v["name"] for v in board["templating"]["list"]} | builtin
        for panel in grafana_json.panels(board):
            for target in panel["targets"]:
                used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
                assert used <= defined, (name, panel["title"], used - defined)


def test_provisioning_loads_the_dashboards_from_a_prometheus_data_source() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert sources["apiVersion"] == 1
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "llm-gateway.yml").read_text()
    )
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
