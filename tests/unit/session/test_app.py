"""Wiring: settings are checked at start, and the service reports its metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.gateway_config import ConfigError
from services.common.settings import ServiceSettings, SettingsError
from services.session.app import build
from tests.unit.session.helpers import append, create


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(service="session", port=0, metrics_port=0, **values)  # type: ignore[arg-type]


async def test_build_requires_a_redis_url() -> None:
    with pytest.raises(SettingsError, match="LLMGW_REDIS_URL"):
        await build(settings())


async def test_build_rejects_a_default_ttl_above_the_maximum(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump({"sessions": {"default_ttl_seconds": 100, "max_ttl_seconds": 10}})
    )
    with pytest.raises(ConfigError, match="default_ttl_seconds"):
        await build(settings(redis_url="redis://127.0.0.1:1/0", config_path=config))


def test_process_without_redis_url_exits_with_one_clear_line(repo_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    env.update(LLMGW_PORT="0", LLMGW_METRICS_PORT="0")
    done = subprocess.run(
        [sys.executable, "-m", "services.session"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("llmgw-session: invalid session")
    assert "Traceback" not in done.stderr


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_metrics_count_what_happens(stub: session_grpc.SessionServiceStub) -> None:
    before = {
        name: sample(name)
        for name in (
            "llmgw_session_sessions_created_total",
            "llmgw_session_sessions_deleted_total",
            "llmgw_session_messages_appended_total",
            "llmgw_session_append_duration_seconds_count",
        )
    }
    session = await create(stub)
    await append(stub, session.name, "a", "b", "c")
    await stub.DeleteSession(session_pb2.DeleteSessionRequest(name=session.name))
    assert sample("llmgw_session_sessions_created_total") == (
        before["llmgw_session_sessions_created_total"] + 1
    )
    assert sample("llmgw_session_sessions_deleted_total") == (
        before["llmgw_session_sessions_deleted_total"] + 1
    )
    assert sample("llmgw_session_messages_appended_total") == (
        before["llmgw_session_messages_appended_total"] + 3
    )
    assert sample("llmgw_session_append_duration_seconds_count") == (
        before["llmgw_session_append_duration_seconds_count"] + 1
    )
