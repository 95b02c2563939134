"""The launcher's Prometheus configuration: a job per service listing every replica's
metrics port, Envoy's ops listener, the rule files and Alertmanager; `promtool check
config` (Debian package prometheus) accepts both modes, and the committed compose file
is a fresh render."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.settings import DEFAULT_PORTS
from services.launcher import prometheus_config
from services.launcher.stack import SERVICES
from services.launcher.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_CONFIG = ROOT / "deploy" / "compose" / "prometheus.yml"
RULE_FIXTURES = ROOT / "tests" / "unit" / "deploy" / "fixtures" / "k8s_rules"
PROMTOOL_MISSING = (
    "promtool is not installed: `make system-deps` installs it (Debian package prometheus)"
)


def _promtool(config: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(PROMTOOL_MISSING)
    return subprocess.run(
        [binary, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_local_mode_lists_every_replica_at_the_launchers_ports(tmp_path: Path) -> None:
    out = tmp_path / "prometheus.yml"
    assert (
        prometheus_config.main(
            ["--mode", "local", "--out", str(out), "--replicas", "router=3", "--replicas", "tool=2"]
        )
        == 0
    )
    config = yaml.safe_load(out.read_text())
    jobs = _jobs(config)
    assert set(jobs) == {*SERVICES, "envoy"}
    router = jobs["router"]["static_configs"][0]["targets"]
    assert router == ["127.0.0.1:9101", "127.0.0.1:9201", "127.0.0.1:9301"]
    assert jobs["tool"]["static_configs"][0]["targets"] == ["127.0.0.1:9104", "127.0.0.1:9204"]
    assert jobs["session"]["static_configs"][0]["targets"] == ["127.0.0.1:9103"]
    envoy = jobs["envoy"]
    assert envoy["metrics_path"] == "/stats/prometheus"
    ops = load_topology().listeners.ops
    assert envoy["static_configs"][0]["targets"] == [f"127.0.0.1:{ops}"]
    assert config["rule_files"] == [prometheus_config.LOCAL_RULES]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9093"]


def test_local_jobs_take_the_ports_a_running_stack_reports() -> None:
    ports = {service: [20000 + i] for i, service in enumerate(SERVICES)}
    ports["provider"] = [31001, 31002]
    jobs = {j["job_name"]: j for j in prometheus_config.local_jobs(ports, "127.0.0.1:31999")}
    assert jobs["provider"]["static_configs"][0]["targets"] == [
        "127.0.0.1:31001",
        "127.0.0.1:31002",
    ]
    assert jobs["envoy"]["static_configs"][0]["targets"] == ["127.0.0.1:31999"]
    with pytest.raises(ValueError, match="no metrics port for session"):
        prometheus_config.local_jobs({**ports, "session": []}, "127.0.0.1:1")


def test_no_target_label_shadows_the_services_own_labels() -> None:
    ports = prometheus_config.default_metrics_ports()
    config = prometheus_config.render(
        prometheus_config.local_jobs(ports, "127.0.0.1:9902"), rule_files=[], alertmanagers=[]
    )
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            assert "service" not in group.get("labels", {}), job["job_name"]
    assert "alerting" not in config


def test_compose_mode_resolves_each_service_name() -> None:
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    jobs = _jobs(config)
    assert set(jobs) == {*SERVICES, "envoy"}
    for service in SERVICES:
        (sd,) = jobs[service]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A"
        assert sd["port"] == DEFAULT_PORTS[service][1]
    assert jobs["envoy"]["static_configs"][0]["targets"] == ["envoy:9902"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    alerting = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == ["alertmanager:9093"]


def test_compose_config_is_freshly_rendered(tmp_path: Path) -> None:
    fresh = tmp_path / "prometheus.yml"
    assert prometheus_config.main(["--mode", "compose", "--out", str(fresh)]) == 0
    assert COMPOSE_CONFIG.read_text() == fresh.read_text(), (
        "deploy/compose/prometheus.yml is stale: run `make render`"
    )


def test_promtool_accepts_the_compose_config() -> None:
    result = _promtool(COMPOSE_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_local_config_and_its_rules(tmp_path: Path) -> None:
    out = tmp_path / "prometheus.yml"
    rules = str(RULE_FIXTURES / "*.yml")
    prometheus_config.main(
        ["--mode", "local", "--out", str(out), "--rules", rules, "--scrape-interval", "1s"]
    )
    result = _promtool(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_promtool_refuses_a_config_whose_rules_do_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text('groups: [{name: g, rules: [{alert: A, expr: "sum("}]}]\n')
    out = tmp_path / "prometheus.yml"
    prometheus_config.main(["--mode", "local", "--out", str(out), "--rules", str(bad)])
    assert _promtool(out).returncode != 0


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        ("router", "expected SERVICE=COUNT"),
        ("router=0", "router: at least one replica"),
        ("nosuch=2", "unknown services: nosuch"),
    ],
)
def test_bad_replica_counts_are_refused(
    tmp_path: Path, replicas: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        prometheus_config.main(
            ["--mode", "local", "--out", str(tmp_path / "p.yml"), "--replicas", replicas]
        )
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.yml").exists()
