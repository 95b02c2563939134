"""deploy/prometheus: the recording and alert rules pass `promtool check rules`, their unit
tests pass `promtool test rules`, and every alert has a positive and a negative test case,
a runbook, a severity and annotations, and reports allow-listed labels only.

promtool comes with Debian's `prometheus` package, which `make system-deps` installs: the
tests skip without it on a developer's machine and fail in CI (CI is set).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.utils import floatToGoString

from services.common.metrics import RPC_LATENCY

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = (PROMETHEUS / "rules" / "recording.yml", PROMETHEUS / "rules" / "alerts.yml")
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks"

# Label names a metric family may carry (issue 13's contract), plus `severity`, which the
# rules add. Alert output with anything else (instance, a consumer id) is a leak.
ALLOWED_LABELS = frozenset(
    [
        "service",
        "method",
        "code",
        "dependency",
        "model",
        "provider",
        "deployment",
        "group",
        "scope",
        "unit",
        "window",
        "state",
        "completeness",
        "outcome",
        "result",
        "reason",
        "tool",
        "operation",
        "kind",
        "stream",
        "direction",
        "error_type",
        "token_type",
        "gen_ai_operation_name",
        "gen_ai_provider_name",
        "gen_ai_request_model",
        "gen_ai_response_model",
        "gen_ai_token_type",
        "le",
        "quantile",
    ]
)
SEVERITIES = frozenset({"critical", "warning"})
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
# The latency SLO: non-streamed chat completions within this many seconds.
LATENCY_SLO_SECONDS = 10.0


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: `make system-deps` installs Debian's prometheus"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in _load(path)["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules(RULE_FILES[1])}


def _cases() -> list[dict[str, Any]]:
    """Every alert_rule_test entry of every unit test file, with its input series."""
    cases = []
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.append({**case, "file": path.name, "series": group["input_series"]})
    return cases


def test_promtool_accepts_the_rule_files() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=[path.name for path in TEST_FILES])
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_load_the_rule_files() -> None:
    for path in TEST_FILES:
        loaded = {(path.parent / name).resolve() for name in _load(path)["rule_files"]}
        assert loaded == {rule_file.resolve() for rule_file in RULE_FILES}, path.name


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = _cases()
    for name in _alerts():
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name}: no case where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{name}: no case where it is quiet"
    unknown = {case["alertname"] for case in cases} - set(_alerts())
    assert not unknown, f"test cases for alerts that do not exist: {sorted(unknown)}"


def test_input_series_carry_target_labels_the_rules_must_aggregate_away() -> None:
    """Every input series has `job` and `instance`, as scraped series do; the exact
    labels the positive cases expect then prove that none of them leaks into an alert."""
    for case in _cases():
        for series in case["series"]:
            assert 'job="' in series["series"], (case["file"], series["series"])
            assert 'instance="' in series["series"], (case["file"], series["series"])


def test_alerts_report_allow_listed_labels_only() -> None:
    for case in _cases():
        for alert in case["exp_alerts"]:
            labels = set(alert.get("exp_labels", {}))
            assert labels <= ALLOWED_LABELS | {"severity"}, (case["alertname"], labels)
    for name, rule in _alerts().items():
        assert set(rule.get("labels", {})) <= {"severity"}, name


def test_every_alert_has_severity_annotations_and_a_runbook() -> None:
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md", name
        runbook = RUNBOOKS / f"{name}.md"
        assert runbook.is_file(), f"{name}: no runbook at {runbook.relative_to(ROOT)}"
        text = runbook.read_text()
        assert text.startswith(f"# {name}\n"), runbook.name
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{runbook.name} lacks {section!r}"


def test_every_runbook_belongs_to_an_alert() -> None:
    runbooks = {path.stem for path in RUNBOOKS.glob("*.md")} - {"README"}
    assert runbooks == set(_alerts())


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for rule in _rules(RULE_FILES[0]):
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_the_latency_slo_threshold_is_a_bucket_boundary_of_the_histogram() -> None:
    """The SLI counts requests in the `le` bucket of the SLO threshold: a bound the router's
    histogram does not have would select nothing and the SLI would read 100 % slow."""
    expressions = [
        rule["expr"]
        for rule in _rules(RULE_FILES[0])
        if rule["record"].startswith("llmgw:slo_latency:")
    ]
    assert len(expressions) == 7  # 5m, 30m, 1h, 2h, 6h, 1d, 3d
    bounds = [bound for bound in RPC_LATENCY._upper_bounds if bound != float("inf")]
    assert LATENCY_SLO_SECONDS in bounds
    # Prometheus 2 stores prometheus_client's spelling ("10.0"); Prometheus 3 normalises
    # it ("10"). The matcher must take both, and no other bucket.
    spellings = {floatToGoString(LATENCY_SLO_SECONDS), f"{LATENCY_SLO_SECONDS:g}"}
    others = {floatToGoString(b) for b in bounds if b != LATENCY_SLO_SECONDS} | {
        f"{b:g}" for b in bounds if b != LATENCY_SLO_SECONDS
    }
    for expr in expressions:
        matchers = re.findall(r'llmgw_rpc_duration_seconds_bucket\{[^}]*le=~"([^"]+)"', expr)
        assert len(matchers) == 1, expr
        pattern = re.compile(matchers[0].replace("\\\\", "\\"))
        assert all(pattern.fullmatch(spelling) for spelling in spellings), matchers[0]
        assert not any(pattern.fullmatch(other) for other in others), matchers[0]


def test_the_slo_windows_are_the_workbook_ones() -> None:
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    records = {rule["record"] for rule in _rules(RULE_FILES[0])}
    for sli in ("llmgw:slo_availability:error_ratio_rate", "llmgw:slo_latency:slow_ratio_rate"):
        assert {f"{sli}{window}" for window in windows} <= records
    for rule in _rules(RULE_FILES[0]):
        suffix = rule["record"].rsplit("_rate", 1)[-1]
        if rule["record"].startswith("llmgw:slo_") and suffix in windows:
            # Every range of the rule is its own window (a copy-paste slip would mix them).
            assert set(re.findall(r"\[(\w+)\]", rule["expr"])) == {suffix}, rule["record"]


def test_a_clean_machine_installs_promtool() -> None:
    """promtool comes from Debian's `prometheus`, which must be in the Makefile's DEBS."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^DEBS :=((?:.*\\\n)*.*)$", makefile, re.M)
    assert match, "no DEBS in the Makefile"
    assert "prometheus" in match.group(1).replace("\\\n", " ").split()
