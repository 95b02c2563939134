"""docker-compose.yml's observability profile: Prometheus on the launcher's rendered
scrape config and the rule files, Alertmanager delivering to the gateway's webhook with
the key from a file, Grafana provisioned from deploy/grafana; pinned official images,
hardened like every other container (tests/unit/deploy/test_containers.py checks that
and the published ports)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.launcher import prometheus_config
from services.launcher.stack import SERVICES
from services.launcher.topology import load_topology
from tests.unit.deploy.test_containers import _docker_compose

ROOT = Path(__file__).resolve().parents[3]
RECEIVER = ROOT / "deploy" / "alertmanager" / "receiver.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "compose" / "prometheus.yml"
IMAGES = {
    "prometheus": "prom/prometheus:",
    "alertmanager": "prom/alertmanager:",
    "grafana": "grafana/grafana:",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    result = _docker_compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    model: dict[str, Any] = yaml.safe_load(result.stdout)
    return model


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (or volume name) of each mount."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = source
    return mounts


def test_observability_runs_pinned_official_images_in_its_profile(
    compose: dict[str, Any],
) -> None:
    for name, prefix in IMAGES.items():
        service = compose["services"][name]
        image = service["image"]
        assert image.startswith(prefix), image
        assert re.fullmatch(r"v?[0-9]+\.[0-9]+\.[0-9]+", image.removeprefix(prefix)), image
        # `docker compose up` alone runs the gateway; the profile adds these.
        assert service["profiles"] == ["observability"], name
        assert f"{name}-data" in compose["volumes"], name


def test_prometheus_loads_the_rendered_config_and_the_rule_files(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _mounts(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == str(PROMETHEUS_CONFIG)
    rules_dir = str(Path(prometheus_config.COMPOSE_RULES).parent)
    assert mounts[rules_dir] == str(ROOT / "deploy" / "prometheus" / "rules")
    assert mounts["/prometheus"] == "prometheus-data"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # It reaches the services' metrics ports and Envoy's ops listener.
    assert "mesh" in prometheus["networks"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {*SERVICES, "envoy"}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert set(sd["names"]) <= set(compose["services"]), sd
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose["services"] and port == "9093"
    assert "observability" in compose["services"][host]["networks"]
    assert "observability" in prometheus["networks"]


def test_alertmanager_delivers_to_the_gateways_webhook(compose: dict[str, Any]) -> None:
    alertmanager = compose["services"]["alertmanager"]
    mounts = _mounts(alertmanager)
    assert mounts["/etc/alertmanager/alertmanager.yml"] == str(RECEIVER)
    receiver = yaml.safe_load(RECEIVER.read_text())
    webhook = receiver["receivers"][0]["webhook_configs"][0]
    url = urlsplit(webhook["url"])
    # Envoy's public listener, on a network Alertmanager shares with Envoy.
    assert url.hostname == "envoy" and url.port == load_topology().listeners.public
    shared = set(alertmanager["networks"]) & set(compose["services"]["envoy"]["networks"])
    assert shared
    # The key comes from a file outside the repository, where receiver.yml reads it.
    credentials = webhook["http_config"]["authorization"]["credentials_file"]
    (secret,) = alertmanager["secrets"]
    assert secret["target"] == credentials
    source = compose["secrets"][secret["source"]]["file"]
    assert not Path(source).is_relative_to(ROOT / "deploy")


def test_grafana_is_provisioned_from_deploy_grafana(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = grafana["environment"]["GF_PATHS_PROVISIONING"]
    (mounted,) = [target for target, source in mounts.items() if source.endswith("deploy/grafana")]
    assert provisioning.startswith(mounted + "/")
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] is None
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    # Grafana queries Prometheus and nothing else of the deployment.
    assert list(grafana["networks"]) == ["observability"]


def test_the_gateway_runs_without_the_profile(compose: dict[str, Any]) -> None:
    for name in (*SERVICES, "envoy", "redis", "llama"):
        assert "profiles" not in compose["services"][name], name


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    source = mounts["/etc/grafana/llmgw"]
    assert (ROOT / source).resolve() == ROOT / "deploy" / "grafana"
    assert grafana["environment"]["GF_PATHS_PROVISIONING"] == "/etc/grafana/llmgw/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/llm-gateway.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    local = ROOT / "deploy" / "grafana" / path.removeprefix("/etc/grafana/llmgw/")
    assert path.startswith("/etc/grafana/llmgw/") and list(local.glob("*.json"))
