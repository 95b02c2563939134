"""The launcher's secrets: the internal secret generated per stack (or taken from the
environment) and passed to every service, only its edge token to Envoy, nothing of either
in the rendered Envoy config or the launcher's output; Redis passwords never printed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from services.common.identity.assertion import EDGE_TOKEN_ENV, edge_token
from services.launcher import envoy_config
from services.launcher.processes import ProcessError
from services.launcher.stack import DESCRIPTOR, Stack, StackOptions

GIVEN_SECRET = "an-operator-chosen-internal-secret-0123456789"
ADMIN_KEY = "launcher-admin-key-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("LLMGW_AUTH", "LLMGW_ADMIN_KEY", "LLMGW_INTERNAL_SECRET"):
        monkeypatch.delenv(name, raising=False)
    yield


class RecordingStack(Stack):
    def __init__(self, options: StackOptions) -> None:
        self.lines: list[str] = []
        super().__init__(options, progress=self.lines.append)


def planned(tmp_path: Path, env: Mapping[str, str] | None = None, **options: object) -> Stack:
    stack = RecordingStack(
        StackOptions(run_dir=tmp_path, dynamic_ports=True, env=dict(env or {}), **options)  # type: ignore[arg-type]
    )
    stack._plan()
    return stack


def service_envs(stack: Stack) -> list[dict[str, str]]:
    return [stack._service_env(r) for replicas in stack.replicas.values() for r in replicas]


def test_a_secret_is_generated_per_stack_and_given_to_every_service(tmp_path: Path) -> None:
    one, two = planned(tmp_path / "one"), planned(tmp_path / "two")
    assert len(one.internal_secret.encode()) >= 32
    assert one.internal_secret != two.internal_secret
    envs = service_envs(one)
    assert len(envs) == 5
    assert {env["LLMGW_INTERNAL_SECRET"] for env in envs} == {one.internal_secret}


@pytest.mark.parametrize("where", ["services", "launcher"])
def test_a_given_secret_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "launcher":
        monkeypatch.setenv("LLMGW_INTERNAL_SECRET", GIVEN_SECRET)
        stack = planned(tmp_path)
    else:
        stack = planned(tmp_path, {"LLMGW_INTERNAL_SECRET": GIVEN_SECRET})
    assert stack.internal_secret == GIVEN_SECRET
    assert all(env["LLMGW_INTERNAL_SECRET"] == GIVEN_SECRET for env in service_envs(stack))


def test_a_short_secret_refuses_to_plan_without_echoing_it(tmp_path: Path) -> None:
    short = "too-short-a-secret"
    with pytest.raises(ProcessError) as refused:
        planned(tmp_path, {"LLMGW_INTERNAL_SECRET": short})
    assert "LLMGW_INTERNAL_SECRET must be at least 32 bytes" in str(refused.value)
    assert short not in str(refused.value)


def test_envoy_gets_the_edge_token_and_none_of_the_services_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set in the launcher's environment, which every child inherits unless overridden.
    monkeypatch.setenv("LLMGW_INTERNAL_SECRET", GIVEN_SECRET)
    monkeypatch.setenv("LLMGW_ADMIN_KEY", ADMIN_KEY)
    stack = planned(tmp_path)
    env = stack._envoy_env()
    assert env[EDGE_TOKEN_ENV] == edge_token(GIVEN_SECRET)
    assert env["LLMGW_INTERNAL_SECRET"] == "" and env["LLMGW_ADMIN_KEY"] == ""


def test_the_rendered_envoy_config_holds_neither_the_secret_nor_the_edge_token(
    tmp_path: Path,
) -> None:
    stack = planned(tmp_path)
    for replicas in stack.replicas.values():
        for number, replica in enumerate(replicas):
            replica.port = 20000 + number
    config = envoy_config.dump_config(
        envoy_config.render(stack.topology, stack._place(), "local", DESCRIPTOR)
    )
    assert stack.internal_secret not in config
    assert edge_token(stack.internal_secret) not in config
    assert f"%ENVIRONMENT({EDGE_TOKEN_ENV})%" in config


def test_nothing_printed_while_planning_holds_a_secret(tmp_path: Path) -> None:
    stack = planned(
        tmp_path,
        {"LLMGW_AUTH": "required", "LLMGW_ADMIN_KEY": ADMIN_KEY},
        host="0.0.0.0",
    )
    assert isinstance(stack, RecordingStack)
    printed = "\n".join(stack.lines)
    assert stack.internal_secret not in printed and ADMIN_KEY not in printed


def test_a_redis_password_is_never_printed(tmp_path: Path) -> None:
    url = "redis://:hunter2-redis-password@redis.internal:6379/0"
    stack = planned(tmp_path, redis_url=url)
    assert isinstance(stack, RecordingStack)
    asyncio.run(stack._start_redis())
    assert stack.lines[-1] == "==> using Redis at redis://:***@redis.internal:6379/0"
    assert stack.redis_url == url  # the services still get the real one
    summary = stack.summary()
    assert "hunter2" not in summary and "redis://:***@redis.internal:6379/0" in summary
