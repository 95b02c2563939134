"""The embedded embeddings server: its command line, and the stack starting it beside the
chat llama-server, exporting its URL to the services and stopping it with the stack."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.launcher import local_embeddings as le
from services.launcher import localmodel as lm
from services.launcher.stack import Stack, StackOptions
from tests.unit.launcher.test_localmodel import _fake_install, _flag


def test_embeddings_argv(tmp_path: Path) -> None:
    install = lm.LlamaServerInstall(binary=tmp_path / "llama-server", chat_template=tmp_path / "t")
    argv = le.embeddings_argv(install, tmp_path / "m.gguf", "127.0.0.1", 18124)
    assert argv[0] == str(install.binary)
    assert _flag(argv, "--model") == str(tmp_path / "m.gguf")
    assert (_flag(argv, "--host"), _flag(argv, "--port")) == ("127.0.0.1", "18124")
    assert "--embeddings" in argv
    assert _flag(argv, "--pooling") == "mean"
    assert _flag(argv, "--alias") == le.EMBEDDINGS_MODEL_NAME
    # A pooled text must fit one physical batch: the batch is as large as the context.
    assert _flag(argv, "--ubatch-size") == _flag(argv, "--ctx-size") == str(le.EMBEDDINGS_CTX)
    assert (_flag(argv, "--parallel"), _flag(argv, "--threads")) == ("1", "1")
    assert "--jinja" not in argv


async def test_local_model_server_in_embeddings_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "stubborn")
    server = lm.LocalModelServer(embeddings=True, stop_grace=0.5, log_path=tmp_path / "e.log")
    async with server:
        assert server.model_name == le.EMBEDDINGS_MODEL_NAME
    assert "--embeddings --pooling mean" in (tmp_path / "e.log").read_text()


async def test_the_stack_runs_the_embeddings_server_beside_the_chat_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "normal")
    monkeypatch.delenv(le.EMBEDDINGS_URL_ENV, raising=False)
    lines: list[str] = []
    stack = Stack(
        StackOptions(run_dir=tmp_path / "run", local_model=True, dynamic_ports=True),
        progress=lines.append,
    )
    await stack._start_local_model()
    try:
        chat, embeddings = stack.local_model, stack.local_embeddings
        assert chat is not None and embeddings is not None
        assert stack.local_embeddings_url != stack.local_model_url
        assert stack._env[le.EMBEDDINGS_URL_ENV] == stack.local_embeddings_url
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(f"{stack.local_embeddings_url}/health")
        assert health.status_code == 200
        logged = (stack.logs / "llama-embeddings.log").read_text()
        assert "--embeddings --pooling mean" in logged
        assert "--embeddings" not in (stack.logs / "llama-server.log").read_text()
        summary = stack.summary()
        assert f"{le.EMBEDDINGS_MODEL_NAME} (llama-server {stack.local_embeddings_url}" in summary
        assert any("embeddings server on" in line for line in lines)
    finally:
        await stack.stop()
    assert chat.returncode is not None and embeddings.returncode is not None


async def test_a_given_embeddings_url_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "normal")
    options = StackOptions(
        run_dir=tmp_path / "run",
        local_model=True,
        dynamic_ports=True,
        env={le.EMBEDDINGS_URL_ENV: "http://embedder.example:9000"},
    )
    stack = Stack(options, progress=lambda line: None)
    await stack._start_local_model()
    try:
        assert stack._env[le.EMBEDDINGS_URL_ENV] == "http://embedder.example:9000"
    finally:
        await stack.stop()
