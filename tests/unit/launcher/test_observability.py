"""The observability companion's pure parts: Prometheus durations, the test-only cap on
the rules' `for:` (checked by `promtool check rules`), the Alertmanager configuration
made from the shipped receiver (checked by `amtool check-config`), and what `plan`
refuses or tells the services."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.launcher import cli
from services.launcher.observability import (
    RECEIVER,
    RULES_DIR,
    WEBHOOK_PATH,
    Observability,
    ObservabilityOptions,
    alertmanager_config,
    cap_for,
    duration_seconds,
)
from services.launcher.processes import ProcessError
from services.launcher.stack import Stack, StackOptions

KEY_FILE = Path("/run/secrets/llmgw-api-key")
WEBHOOK = "http://127.0.0.1:18080" + WEBHOOK_PATH


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} is not installed: `make system-deps` installs it")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def _rules(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((RULES_DIR / name).read_text())
    return document


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("500ms", 0.5)],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "1.5h", "m5", "5m junk"])
def test_duration_seconds_refuses_what_prometheus_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_seconds(text)


def test_cap_for_shortens_only_longer_waits_and_leaves_the_source_alone() -> None:
    shipped = _rules("alerts.yml")
    before = copy.deepcopy(shipped)
    capped = cap_for(shipped, "3m")
    assert shipped == before
    pairs = [
        (old, new)
        for old_group, new_group in zip(shipped["groups"], capped["groups"], strict=True)
        for old, new in zip(old_group["rules"], new_group["rules"], strict=True)
    ]
    assert pairs
    for old, new in pairs:
        assert {k: v for k, v in new.items() if k != "for"} == {
            k: v for k, v in old.items() if k != "for"
        }
        if "for" in old:
            assert new["for"] == ("3m" if duration_seconds(old["for"]) > 180 else old["for"])
    assert {new.get("for") for _, new in pairs} >= {"3m", "2m", "1m"}


def test_capped_rules_pass_promtool(tmp_path: Path) -> None:
    files = []
    for source in sorted(RULES_DIR.glob("*.yml")):
        target = tmp_path / source.name
        target.write_text(yaml.safe_dump(cap_for(yaml.safe_load(source.read_text()), "0s")))
        files.append(str(target))
    checked = _tool("promtool", "check", "rules", *files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _receiver() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RECEIVER.read_text())
    return document


def test_alertmanager_config_points_the_shipped_receiver_at_the_stack(tmp_path: Path) -> None:
    receiver = _receiver()
    config = alertmanager_config(receiver, WEBHOOK, KEY_FILE, {"group_wait": "0s"})
    assert receiver == _receiver()
    (hook,) = config["receivers"][0]["webhook_configs"]
    assert hook["url"] == WEBHOOK
    assert hook["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": str(KEY_FILE)}
    }
    assert hook["send_resolved"] is True and hook["max_alerts"] == 1000
    assert config["route"]["group_wait"] == "0s"
    assert config["route"]["group_interval"] == receiver["route"]["group_interval"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    checked = _tool("amtool", "check-config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alertmanager_config_without_a_key_sends_none() -> None:
    config = alertmanager_config(_receiver(), WEBHOOK, None, {})
    (hook,) = config["receivers"][0]["webhook_configs"]
    assert "http_config" not in hook
    assert config["route"] == _receiver()["route"]


def test_alertmanager_config_refuses_unknown_route_settings() -> None:
    with pytest.raises(ValueError, match="not route timings: receiver"):
        alertmanager_config(_receiver(), WEBHOOK, None, {"receiver": "other"})


def _stack(tmp_path: Path, **options: Any) -> Stack:
    return Stack(StackOptions(run_dir=tmp_path, **options), progress=lambda line: None)


def test_plan_refuses_required_auth_without_the_admin_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMGW_ADMIN_KEY", raising=False)
    stack = _stack(tmp_path)
    stack.auth = "required"
    with pytest.raises(ProcessError, match="set LLMGW_ADMIN_KEY"):
        Observability().plan(stack)


def test_plan_refuses_a_bad_interval(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="not a Prometheus duration: '1 second'"):
        Observability(ObservabilityOptions(interval="1 second")).plan(_stack(tmp_path))


def test_plan_points_the_toolset_at_its_prometheus(tmp_path: Path) -> None:
    fixed = Observability()
    assert fixed.plan(_stack(tmp_path)) == {"PROMETHEUS_URL": "http://127.0.0.1:9090"}
    assert fixed.ports() == [("Prometheus", 9090), ("Alertmanager", 9093)]
    free = Observability()
    env = free.plan(_stack(tmp_path, dynamic_ports=True))
    (_, prometheus), (_, alertmanager) = free.ports()
    assert env == {"PROMETHEUS_URL": f"http://127.0.0.1:{prometheus}"}
    assert free.alertmanager_url == f"http://127.0.0.1:{alertmanager}"
    assert (prometheus, alertmanager) != (9090, 9093)


def test_up_takes_the_observability_options() -> None:
    args = cli._parser().parse_args(
        ["up", "--observability", "--prometheus-port", "19090", "--scrape-interval", "5s"]
    )
    assert args.observability and args.prometheus_port == 19090
    assert args.alertmanager_port is None and args.scrape_interval == "5s"
    assert not cli._parser().parse_args(["up"]).observability
