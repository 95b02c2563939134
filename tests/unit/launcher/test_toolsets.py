"""The launcher and the toolsets: KUBECONFIG and PROMETHEUS_* reach the tool service
(KUBECONFIG made absolute), not Envoy's secrets, and the operator is told which
toolsets run."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.launcher.stack import Stack, StackOptions


class RecordingStack(Stack):
    def __init__(self, options: StackOptions) -> None:
        self.lines: list[str] = []
        super().__init__(options, progress=self.lines.append)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "PROMETHEUS_URL", "PROMETHEUS_TOKEN", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)


def _planned(tmp_path: Path, env: dict[str, str]) -> RecordingStack:
    stack = RecordingStack(StackOptions(run_dir=tmp_path, dynamic_ports=True, env=env))
    stack._plan()
    return stack


def test_toolset_variables_reach_the_tool_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMETHEUS_TOKEN", "prom-token-from-the-shell")
    stack = _planned(tmp_path, {"KUBECONFIG": "kube/config", "PROMETHEUS_URL": "http://prom:9090"})
    (tool,) = stack.replicas["tool"]
    env = stack._service_env(tool)
    assert env["KUBECONFIG"] == str(tmp_path / "kube" / "config")
    assert env["PROMETHEUS_URL"] == "http://prom:9090"
    assert env["PROMETHEUS_TOKEN"] == "prom-token-from-the-shell"
    assert stack._envoy_env()["PROMETHEUS_TOKEN"] == ""


def test_the_enabled_toolsets_are_announced(tmp_path: Path) -> None:
    stack = _planned(tmp_path, {"KUBECONFIG": str(tmp_path / "config")})
    stack._announce_toolsets()
    assert stack.lines[-1] == "==> toolsets enabled: kubernetes"
    quiet = _planned(tmp_path, {})
    quiet._announce_toolsets()
    assert quiet.lines[-1].startswith("==> toolsets: none")
