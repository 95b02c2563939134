"""A Go program built from the generated Go stubs calls the gateway through Envoy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes import DEFAULT_TEXT, Behaviour
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def go_client(
    repo_root: Path, tmp_path_factory: pytest.TempPathFactory, go_build_cache: Path
) -> Path:
    """The client, built in GOPATH mode against Debian's Go packages."""
    assert shutil.which("go"), "go missing: `make system-deps` installs golang-go"
    work = tmp_path_factory.mktemp("go")
    src = work / "gopath" / "src"
    src.mkdir(parents=True)
    (src / "llmgw").symlink_to(repo_root / "gen" / "go" / "llmgw")
    (src / "goclient").symlink_to(repo_root / "tests" / "e2e" / "goclient")
    binary = work / "goclient"
    subprocess.run(
        ["go", "build", "-o", str(binary), "goclient"],
        cwd=src,
        env={
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": f"{work / 'gopath'}:/usr/share/gocode",
            "GOCACHE": str(go_build_cache),
        },
        check=True,
        capture_output=True,
        timeout=600,
    )
    return binary


def test_go_client_lists_completes_streams_and_reads_status_details(
    go_client: Path, gw: Gateway
) -> None:
    # The unary call, then the stream with its pieces apart in time: pieces that reach
    # the provider together would be coalesced into one chunk.
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(), Behaviour(chunk_delay=0.05))
    result = subprocess.run(
        [str(go_client), gw.grpc_target, "fast"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "gpt-4o-mini" in out["models"]
    assert out["unary"] == DEFAULT_TEXT
    assert out["finish_reason"] == "stop"
    assert out["stream"] == DEFAULT_TEXT
    assert out["chunks"] > 2
    assert out["refused_code"] == "NotFound"
    assert out["refused_reason"] == "MODEL_NOT_FOUND"
