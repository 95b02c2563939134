"""gen/ is produced only by `make gen`: regenerating must reproduce it byte for byte."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _tree(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_protos(repo_root: Path, tmp_path: Path) -> None:
    for tool in ("protoc-gen-go", "protoc-gen-go-grpc"):
        assert shutil.which(tool), f"{tool} missing: `make system-deps` installs it"
    result = subprocess.run(  # noqa: PLW1510 - the test reads the exit status itself
        ["tools/gen.sh"],
        cwd=repo_root,
        env={**os.environ, "GEN_BASE": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    fresh, committed = tmp_path / "gen", repo_root / "gen"
    assert _tree(fresh) == _tree(committed), "gen/ files differ from protos: run `make gen`"
    drifted = [
        name
        for name in sorted(_tree(fresh))
        if not filecmp.cmp(fresh / name, committed / name, shallow=False)
    ]
    assert not drifted, f"gen/ is stale, run `make gen`: {drifted[:10]}"


def test_protos_pass_buf_lint(repo_root: Path) -> None:
    result = subprocess.run(  # noqa: PLW1510 - the test reads the exit status itself
        [str(repo_root / ".venv/bin/buf"), "lint"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("package", ["commonv1", "routerv1", "sessionv1", "providerv1"])
def test_go_stubs_compile(
    repo_root: Path, tmp_path: Path, go_build_cache: Path, package: str
) -> None:
    assert shutil.which("go"), "go missing: `make system-deps` installs golang-go"
    gopath = tmp_path / "gopath"
    (gopath / "src").mkdir(parents=True)
    (gopath / "src" / "llmgw").symlink_to(repo_root / "gen" / "go" / "llmgw")
    directory = {
        "commonv1": "common",
        "routerv1": "router",
        "sessionv1": "session",
        "providerv1": "provider",
    }[package]
    result = subprocess.run(  # noqa: PLW1510 - the test reads the exit status itself
        ["go", "vet", f"llmgw/{directory}/v1"],
        cwd=gopath / "src",
        env={
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": f"{gopath}:/usr/share/gocode",
            "GOCACHE": str(go_build_cache),
            "GOFLAGS": "",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
