"""Kubeconfig files pointing at the fake Kubernetes API (tests/fakes/kubernetes_fake.py)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from services.launcher.stack import REPO_ROOT

# Seconds the fake API process may take to bind its port.
START_SECONDS = 20.0

# A PEM given as bytes is embedded (`<field>-data`, base64); as a Path it is referenced.
Pem = bytes | Path


def _pem_field(target: dict[str, str], field: str, value: Pem | None) -> None:
    if isinstance(value, Path):
        target[field] = str(value)
    elif value is not None:
        target[f"{field}-data"] = base64.b64encode(value).decode()


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    token: str | None = None,
    namespace: str = "default",
    ca: Pem | None = None,
    client_cert: Pem | None = None,
    client_key: Pem | None = None,
) -> Path:
    """A kubeconfig with one context over `server` (http:// allowed), authenticating
    with `token` and/or a client certificate and key when given, and trusting `ca` for
    an https:// server; each PEM embedded (bytes: `certificate-authority-data`,
    `client-certificate-data`, `client-key-data`) or by file (a Path:
    `certificate-authority`, `client-certificate`, `client-key`), as kubectl and
    lightkube both read them."""
    user: dict[str, str] = {"token": token} if token is not None else {}
    _pem_field(user, "client-certificate", client_cert)
    _pem_field(user, "client-key", client_key)
    cluster = {"server": server}
    _pem_field(cluster, "certificate-authority", ca)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "tester", "user": user}],
        "contexts": [
            {
                "name": "fake",
                "context": {"cluster": "fake", "user": "tester", "namespace": namespace},
            }
        ],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextmanager
def running_kube_fake(run_dir: Path, scenario: str, token: str) -> Iterator[Path]:
    """The fake Kubernetes API as its own process over `scenario`, requiring `token`;
    yields a kubeconfig for it (written in `run_dir`). Stopped on exit."""
    port_file = run_dir / "kube.port"
    log_path = run_dir / "kube.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.kubernetes_fake",
                "--scenario",
                scenario,
                "--token",
                token,
                "--port-file",
                str(port_file),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not (port_file.exists() and port_file.read_text().strip()):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the fake Kubernetes API did not start"
                time.sleep(0.05)
            server = f"http://127.0.0.1:{int(port_file.read_text())}"
            yield write_kubeconfig(run_dir / "kubeconfig", server, token=token)
        finally:
            process.terminate()
            process.wait(10)
