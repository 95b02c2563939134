"""CatalogStore: reloads that swap the catalogue or keep it, versions, announcements."""

from __future__ import annotations

import asyncio
import copy
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from redis import exceptions as redis_exceptions

from services.common.errors import InvalidArgument, Unavailable
from services.common.gateway_config import ConfigError
from services.common.redis_store import create_redis
from services.launcher.processes import free_port
from services.router.catalog import Catalog
from services.router.catalog_store import (
    GENERATION_KEY,
    VERSION_KEY,
    CatalogStore,
    config_version,
)
from tests.conftest import RedisServer

DOCUMENT: dict[str, Any] = {
    "providers": {"openai": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
    "models": [{"name": "alpha", "deployments": [{"provider": "openai", "model": "a"}]}],
    "default_model": "alpha",
}


def _with_model(name: str) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["models"].append(
        {"name": name, "deployments": [{"provider": "openai", "model": name}]}
    )
    return document


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def _names(catalog: Catalog) -> list[str]:
    return [entry.name for entry in catalog.entries]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _write(tmp_path / "gateway.yaml", DOCUMENT)


async def test_reload_swaps_the_catalogue_and_tells_subscribers(config: Path) -> None:
    store = CatalogStore(config, None)
    seen: list[Catalog] = []
    store.subscribe(seen.append)
    before = store.version
    _write(config, _with_model("beta"))

    catalog = await store.reload(broadcast=False)

    assert _names(catalog) == ["alpha", "beta"]
    assert store.current is catalog and seen == [catalog]
    assert store.version != before
    assert store.version == config_version(catalog.config)


async def test_an_invalid_file_is_refused_with_a_violation_per_problem(config: Path) -> None:
    store = CatalogStore(config, None)
    seen: list[Catalog] = []
    store.subscribe(seen.append)
    old, old_version = store.current, store.version
    broken = _with_model("beta")
    broken["models"][1]["deployments"].append({"provider": "nowhere", "model": "b"})
    broken["default_model"] = "gamma"
    _write(config, broken)

    with pytest.raises(InvalidArgument) as caught:
        await store.reload(broadcast=True)

    fields = {v.field: v.description for v in caught.value.violations}
    assert set(fields) == {"models.1.deployments.1.provider", "default_model"}
    assert "unknown provider 'nowhere'" in fields["models.1.deployments.1.provider"]
    assert "previous catalogue stays in service" in caught.value.message
    assert store.current is old and store.version == old_version and seen == []


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda path: path.unlink(), "No such file"),
        (lambda path: path.write_text("models: [unclosed\n"), "gateway.yaml"),
        (lambda path: path.write_text("- just\n- a list\n"), "mapping"),
    ],
    ids=["missing", "not-yaml", "not-a-mapping"],
)
async def test_an_unreadable_file_is_the_config_field_without_directories(
    config: Path, damage: Any, expected: str
) -> None:
    store = CatalogStore(config, None)
    old = store.current
    damage(config)

    with pytest.raises(InvalidArgument) as caught:
        await store.reload(broadcast=False)

    (violation,) = caught.value.violations
    assert violation.field == "config"
    assert expected in violation.description
    assert str(config.parent) not in violation.description
    assert str(config.parent) not in caught.value.message
    assert store.current is old


def test_the_first_load_of_an_invalid_file_fails(tmp_path: Path) -> None:
    broken = copy.deepcopy(DOCUMENT)
    broken["default_model"] = "nothing"
    with pytest.raises(ConfigError, match="default_model"):
        CatalogStore(_write(tmp_path / "gateway.yaml", broken), None)


def test_version_depends_on_content_only(tmp_path: Path, config: Path) -> None:
    version = CatalogStore(config, None).version
    # Same content written differently: other key order, flow style, a comment.
    reordered = tmp_path / "other.yaml"
    reordered.write_text(
        "# same catalogue\ndefault_model: alpha\n"
        "models: [{deployments: [{model: a, provider: openai}], name: alpha}]\n"
        "providers: {openai: {base_url: 'http://127.0.0.1:9/v1', type: openai}}\n"
    )
    assert CatalogStore(reordered, None).version == version
    assert CatalogStore(_write(tmp_path / "x.yaml", _with_model("b")), None).version != version
    # Another interpreter (other hash seed) computes the same version.
    script = (
        "import sys; from pathlib import Path;"
        "from services.router.catalog_store import CatalogStore;"
        "print(CatalogStore(Path(sys.argv[1]), None).version)"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert other.stdout.strip() == version


async def test_without_a_file_reload_derives_from_the_environment() -> None:
    environ: dict[str, str] = {}
    store = CatalogStore(None, None, environ)
    assert _names(store.current) == []
    environ["OPENAI_API_KEY"] = "sk-test-0123456789"
    catalog = await store.reload(broadcast=False)
    assert "gpt-4o" in _names(catalog)


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[aioredis.Redis]]:
    made = [create_redis(redis_server.url) for _ in range(3)]
    yield made
    for client in made:
        await client.aclose()


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_broadcast_reload_reaches_another_replica(
    tmp_path: Path, clients: list[aioredis.Redis]
) -> None:
    # Two replicas, each with its own copy of the file (as on two machines).
    file_a = _write(tmp_path / "a.yaml", DOCUMENT)
    file_b = _write(tmp_path / "b.yaml", DOCUMENT)
    a = CatalogStore(file_a, clients[0], poll_interval=0.02)
    b = CatalogStore(file_b, clients[1], poll_interval=0.02)
    b.start()
    try:
        for path in (file_a, file_b):
            _write(path, _with_model("beta"))
        await a.reload(broadcast=True)
        assert await clients[2].get(VERSION_KEY) == a.version.encode()
        await _until(lambda: "beta" in _names(b.current))
        assert b.version == a.version
    finally:
        await b.close()
    # The announcing replica does not reload again for its own announcement.
    assert await a.check_announcement() is False


async def test_an_unchanged_reload_is_still_announced(
    config: Path, clients: list[aioredis.Redis]
) -> None:
    a = CatalogStore(config, clients[0])
    b = CatalogStore(config, clients[1])
    reloads: list[Catalog] = []
    b.subscribe(reloads.append)
    await a.reload(broadcast=True)
    # First sight of an announcement of the version b already serves: nothing to do.
    assert await b.check_announcement() is False
    await a.reload(broadcast=True)
    assert await clients[2].get(GENERATION_KEY) == b"2"
    assert await b.check_announcement() is True
    assert len(reloads) == 1
    assert await b.check_announcement() is False


async def test_an_announced_reload_of_an_invalid_file_keeps_the_catalogue(
    tmp_path: Path, clients: list[aioredis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    a = CatalogStore(_write(tmp_path / "a.yaml", DOCUMENT), clients[0])
    file_b = _write(tmp_path / "b.yaml", DOCUMENT)
    b = CatalogStore(file_b, clients[1])
    old = b.current
    await a.reload(broadcast=True)
    assert await b.check_announcement() is False
    file_b.write_text("models: 3\n")
    await a.reload(broadcast=True)
    with caplog.at_level(logging.ERROR, "llmgw.router.catalog"):
        assert await b.check_announcement() is True
    assert b.current is old
    assert "previous catalogue stays in service" in caplog.text


async def test_broadcast_without_redis_reloads_here_and_says_so(config: Path) -> None:
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        store = CatalogStore(config, dead)
        _write(config, _with_model("beta"))
        with pytest.raises(Unavailable, match="retry"):
            await store.reload(broadcast=True)
        assert "beta" in _names(store.current)
    finally:
        await dead.aclose()


class FlakyRedis:
    """Answers MGET with a connection error until told to answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.reply: list[bytes | None] | None = None

    async def mget(self, *keys: str) -> list[bytes | None]:
        self.calls += 1
        if self.reply is None:
            raise redis_exceptions.ConnectionError("refused")
        return self.reply


async def test_the_watcher_survives_redis_errors_and_logs_them_once(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyRedis()
    store = CatalogStore(config, flaky, poll_interval=0.01)  # type: ignore[arg-type]
    store.start()
    try:
        with caplog.at_level(logging.INFO, "llmgw.router.catalog"):
            await _until(lambda: flaky.calls >= 5)
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "Redis unavailable" in warnings[0].getMessage()
            _write(config, _with_model("beta"))
            flaky.reply = [b"another-version", b"1"]
            await _until(lambda: "beta" in _names(store.current))
            assert "Redis reachable again" in caplog.text
    finally:
        await store.close()
