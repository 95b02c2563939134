"""deploy/alertmanager/receiver.yml, the example Alertmanager configuration for the
gateway's webhook: its receiver must reach the route the API serves, send `resolved`,
present the key as a bearer token read from a file, and stay within what the receiver
accepts. `amtool check-config` (Debian package prometheus-alertmanager) validates it as
Alertmanager itself would when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from google.api import annotations_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation import webhook

ROOT = Path(__file__).resolve().parents[3]
RECEIVER = ROOT / "deploy" / "alertmanager" / "receiver.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(RECEIVER.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _webhook_path() -> str:
    """The REST path of ReceiveAlertmanagerWebhook, from the API's own http rule."""
    service = inv_pb2.DESCRIPTOR.services_by_name["InvestigationService"]
    method = service.methods_by_name["ReceiveAlertmanagerWebhook"]
    path: str = method.GetOptions().Extensions[annotations_pb2.http].post
    return path


def _gateway_webhook(config: dict[str, Any]) -> dict[str, Any]:
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    (hook,) = receivers[config["route"]["receiver"]]["webhook_configs"]
    assert isinstance(hook, dict)
    return hook


def test_the_route_sends_every_alert_to_the_gateway_receiver(config: dict[str, Any]) -> None:
    assert set(config) == {"route", "receivers"}
    assert set(config["route"]) >= {"receiver", "group_by", "group_wait", "group_interval"}
    hook = _gateway_webhook(config)
    assert set(hook) == {"url", "send_resolved", "max_alerts", "http_config"}
    assert hook["send_resolved"] is True
    assert 0 < hook["max_alerts"] <= webhook.MAX_ALERTS


def test_the_url_is_envoys_public_listener_and_the_apis_path(config: dict[str, Any]) -> None:
    url = urlsplit(_gateway_webhook(config)["url"])
    assert url.path == _webhook_path() == "/v1/alertmanager/webhook"
    assert not url.query and not url.username
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    published = compose["services"][url.hostname]["ports"]
    assert any(str(entry).endswith(f":{url.port}") for entry in published)


def test_the_key_is_a_bearer_token_read_from_a_file(config: dict[str, Any]) -> None:
    authorization = _gateway_webhook(config)["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert set(authorization) == {"type", "credentials_file"}
    assert authorization["credentials_file"].startswith("/")


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_amtool_accepts_it() -> None:
    amtool = shutil.which("amtool")
    assert amtool
    checked = subprocess.run(
        [amtool, "check-config", str(RECEIVER)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "1 receivers" in checked.stdout
