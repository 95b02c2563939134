"""Every metric the alert rules, recording rules and dashboards read is one the code emits:
names are read from the PromQL (tests/unit/deploy/promql.py) and compared with the
families the services define (read from their source, tests/unit/deploy/metric_families.py)
and the Envoy stats listed in deploy/prometheus/envoy_stats.txt. Matcher labels must be
labels of their family, grouping labels labels of some family the expression reads.

Fail-closed: a family the contract names but the code does not define yet fails here.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
import yaml

from services.launcher.processes import free_port
from services.launcher.stack import Replica, Stack, StackOptions
from tests.unit.deploy import grafana_json
from tests.unit.deploy.metric_families import Family, families
from tests.unit.deploy.promql import Reads, reads

ROOT = Path(__file__).resolve().parents[3]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
ENVOY_STATS = ROOT / "deploy" / "prometheus" / "envoy_stats.txt"
# Labels Prometheus adds to every scraped series (the target's).
TARGET_LABELS = frozenset({"job", "instance"})
_ENVOY_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("",), "gauge": ("",)}


def _rules() -> list[dict[str, str]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _recorded() -> dict[str, Reads]:
    return {rule["record"]: reads(rule["expr"]) for rule in _rules() if "record" in rule}


def _expressions() -> list[tuple[str, Reads]]:
    """(where, what it reads) for every rule, dashboard query and dashboard variable."""
    found = [(rule.get("record") or rule["alert"], reads(rule["expr"])) for rule in _rules()]
    for query in grafana_json.queries() + grafana_json.variable_selectors():
        found.append((f"{query.dashboard}: {query.panel}", reads(query.expr)))
    return found


def _code_families() -> dict[str, Family]:
    found, unreadable = families(ROOT / "services")
    assert not unreadable, f"metric families whose name is not a literal: {unreadable}"
    return {name: family for family in found for name in family.exposed}


def _envoy_stats() -> dict[str, tuple[str, frozenset[str]]]:
    """Listed Envoy families: name -> (type, label names)."""
    stats = {}
    for line in ENVOY_STATS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, labels = line.split()
            stats[name] = (kind, frozenset(labels.split(",")))
    return stats


def _envoy_exposed() -> dict[str, frozenset[str]]:
    """Sample names of the listed Envoy families -> their label names."""
    exposed = {}
    for name, (kind, labels) in _envoy_stats().items():
        for suffix in _ENVOY_SUFFIXES[kind]:
            exposed[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return exposed


def _labels_of(name: str, code: dict[str, Family], recorded: dict[str, Reads]) -> set[str]:
    """Every label the series called `name` may carry (recording rules: those of what
    they read, which is at most what they keep)."""
    if name in recorded:
        own: set[str] = set()
        for selector in recorded[name].selectors:
            own |= _labels_of(selector.name, code, recorded)
        return own
    if name in code:
        family = code[name]
        assert family.labels is not None, f"{family.where}: label names are not literal"
        return set(family.labels) | ({"le"} if name.endswith("_bucket") else set())
    return set(_envoy_exposed().get(name, frozenset()))


def test_the_source_scan_sees_the_families_and_their_labels() -> None:
    """A guard on the scanner: a family defined the usual way is found with its labels
    and the names Prometheus stores."""
    code = _code_families()
    assert code["llmgw_rpc_requests_total"].labels == {"service", "method", "code"}
    assert code["llmgw_rpc_duration_seconds_bucket"].name == "llmgw_rpc_duration_seconds"
    assert "llmgw_rpc_requests_created" in code
    assert "llmgw_rpc_in_flight_total" not in code


def test_every_metric_read_is_emitted_by_the_code_or_envoy() -> None:
    code = _code_families()
    recorded = _recorded()
    envoy = _envoy_exposed()
    missing = sorted(
        {
            f"{name} (in {where})"
            for where, read in _expressions()
            for name in read.names
            if name not in code and name not in recorded and name not in envoy
        }
    )
    assert not missing, "metrics no code emits:\n" + "\n".join(missing)


def test_recording_rule_names_are_only_read_where_they_are_defined() -> None:
    """A name with a colon is a recording rule's; reading one that no rule defines is a
    typo that would never match."""
    recorded = _recorded()
    for where, read in _expressions():
        for name in read.names:
            if ":" in name:
                assert name in recorded, f"{where} reads {name}, which no rule records"


def test_matcher_labels_are_labels_of_their_family() -> None:
    code = _code_families()
    recorded = _recorded()
    for where, read in _expressions():
        for selector in read.selectors:
            if selector.name not in code and selector.name not in _envoy_exposed():
                continue  # reported by the name test
            known = _labels_of(selector.name, code, recorded) | TARGET_LABELS
            unknown = selector.labels - known
            assert not unknown, f"{where}: {selector.name} has no label {sorted(unknown)}"


def _emitted(name: str, code: dict[str, Family], recorded: dict[str, Reads]) -> bool:
    if name in recorded:
        return all(_emitted(selector.name, code, recorded) for selector in recorded[name].selectors)
    return name in code or name in _envoy_exposed()


def test_grouping_labels_are_labels_of_what_the_expression_reads() -> None:
    code = _code_families()
    recorded = _recorded()
    for where, read in _expressions():
        if not all(_emitted(name, code, recorded) for name in read.names):
            continue  # reported by the name test
        known = set(TARGET_LABELS)
        for name in read.names:
            known |= _labels_of(name, code, recorded)
        unknown = read.grouping - known
        assert not unknown, f"{where}: groups by {sorted(unknown)}, which nothing it reads has"


def test_every_listed_envoy_stat_is_used() -> None:
    used = {name for _, read in _expressions() for name in read.names}
    envoy = _envoy_exposed()
    for name, (kind, _labels) in _envoy_stats().items():
        assert any(name + suffix in used for suffix in _ENVOY_SUFFIXES[kind]), (
            f"{name} is listed in {ENVOY_STATS.name} but nothing reads it"
        )
    assert all(name.startswith("envoy_") for name in envoy)


class _EnvoyOnly(Stack):
    """A planned stack of which only Envoy starts (its upstreams point at a closed port:
    Envoy runs without healthy upstreams, and exports its stats all the same)."""

    def __init__(self, options: StackOptions) -> None:
        super().__init__(options, progress=lambda line: None)
        self._plan()
        nobody = free_port()
        for replicas in self.replicas.values():
            for replica in replicas:
                replica.port = nobody

    async def _start_replica(self, replica: Replica) -> None:
        return None


@pytest.mark.integration
def test_envoy_exports_the_listed_stats_with_their_labels(tmp_path: Path) -> None:
    """Envoy, started from the config the launcher renders, serves each listed family
    with its type and label names on the ops listener."""

    async def scrape() -> str:
        stack = _EnvoyOnly(StackOptions(run_dir=tmp_path, dynamic_ports=True))
        try:
            await stack._start_envoy()
            async with httpx.AsyncClient(base_url=stack.ops_url, timeout=5) as ops:
                reply = await ops.get("/stats/prometheus")
                reply.raise_for_status()
                return reply.text
        finally:
            await stack.stop()

    text = asyncio.run(scrape())
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, (kind, labels) in _envoy_stats().items():
        assert types.get(name) == kind, f"Envoy exports no {kind} {name}"
        sample = re.search(rf"^{name}(?:_bucket)?\{{([^}}]*)\}}", text, re.M)
        assert sample, f"no sample of {name}"
        seen = set(re.findall(r'(\w+)="', sample.group(1))) - {"le"}
        assert seen == labels, (name, seen)
