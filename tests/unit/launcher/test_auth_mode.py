"""The launcher's authentication decision: off only while Envoy's public listener is on
loopback, LLMGW_AUTH passed on to every service, and what the operator is told."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from services.launcher.processes import ProcessError
from services.launcher.stack import Stack, StackOptions

ADMIN_KEY = "launcher-admin-key-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The launcher reads its own environment too: start every test without these."""
    monkeypatch.delenv("LLMGW_AUTH", raising=False)
    monkeypatch.delenv("LLMGW_ADMIN_KEY", raising=False)
    yield


class RecordingStack(Stack):
    """A stack that keeps its progress lines instead of printing them."""

    def __init__(self, options: StackOptions) -> None:
        self.lines: list[str] = []
        super().__init__(options, progress=self.lines.append)


def stack(
    tmp_path: Path, host: str = "127.0.0.1", env: Mapping[str, str] | None = None
) -> RecordingStack:
    return RecordingStack(
        StackOptions(run_dir=tmp_path, host=host, dynamic_ports=True, env=dict(env or {}))
    )


def service_envs(planned: Stack) -> list[dict[str, str]]:
    return [planned._service_env(r) for replicas in planned.replicas.values() for r in replicas]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_defaults_to_off_and_every_service_is_told(tmp_path: Path, host: str) -> None:
    planned = stack(tmp_path, host)
    planned._plan()
    assert planned.auth == "off"
    envs = service_envs(planned)
    assert len(envs) == 5
    assert all(env["LLMGW_AUTH"] == "off" for env in envs)
    (line,) = planned.lines
    assert line.startswith("==> authentication off") and host in line
    assert "LLMGW_AUTH=required" in line


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
@pytest.mark.parametrize("requested", ["", "off", "OFF"])
def test_a_network_host_without_required_auth_refuses_to_plan(
    tmp_path: Path, host: str, requested: str
) -> None:
    planned = stack(tmp_path, host, {"LLMGW_AUTH": requested} if requested else {})
    with pytest.raises(ProcessError) as refused:
        planned._plan()
    message = str(refused.value)
    assert f"refusing to listen on {host} without authentication" in message
    assert "LLMGW_AUTH=required" in message
    assert planned.replicas == {}


def test_required_in_the_services_env_opens_a_network_host(tmp_path: Path) -> None:
    planned = stack(tmp_path, "0.0.0.0", {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": ADMIN_KEY})
    planned._plan()
    assert planned.auth == "required"
    assert all(env["LLMGW_AUTH"] == "required" for env in service_envs(planned))
    assert planned.lines == ["==> authentication required: every public RPC needs an API key"]


def test_required_in_the_launchers_env_counts_and_is_case_insensitive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGW_AUTH", "Required")
    monkeypatch.setenv("LLMGW_ADMIN_KEY", ADMIN_KEY)
    planned = stack(tmp_path, "0.0.0.0")
    planned._decide_auth()
    assert planned.auth == "required"
    assert planned._env["LLMGW_AUTH"] == "required"
    assert planned.lines == ["==> authentication required: every public RPC needs an API key"]


def test_required_without_an_admin_key_says_only_issued_keys_work(tmp_path: Path) -> None:
    planned = stack(tmp_path, "0.0.0.0", {"LLMGW_AUTH": "required"})
    planned._decide_auth()
    (line,) = planned.lines
    assert "no LLMGW_ADMIN_KEY: only keys already issued work" in line


def test_required_may_be_chosen_on_loopback_too(tmp_path: Path) -> None:
    planned = stack(tmp_path, "127.0.0.1", {"LLMGW_AUTH": "required"})
    planned._decide_auth()
    assert planned.auth == "required"


def test_the_services_env_wins_over_the_launchers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGW_AUTH", "required")
    planned = stack(tmp_path, "127.0.0.1", {"LLMGW_AUTH": "off"})
    planned._decide_auth()
    assert planned.auth == "off"
    with pytest.raises(ProcessError):
        stack(tmp_path, "0.0.0.0", {"LLMGW_AUTH": "off"})._decide_auth()


def test_an_unknown_mode_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="LLMGW_AUTH must be off or required, not 'maybe'"):
        stack(tmp_path, "127.0.0.1", {"LLMGW_AUTH": "Maybe"})._decide_auth()


def test_the_summary_shows_the_key_header_only_when_keys_are_required(tmp_path: Path) -> None:
    open_stack = stack(tmp_path / "open")
    open_stack._plan()
    assert "authorization" not in open_stack.summary()
    secured = stack(tmp_path / "secured", env={"LLMGW_AUTH": "required"})
    secured._plan()
    (try_line,) = [line for line in secured.summary().splitlines() if line.startswith("try:")]
    assert "-H 'authorization: Bearer <API key>'" in try_line
