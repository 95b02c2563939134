"""Kubeconfig files pointing at the fake Kubernetes API (tests/fakes/kubernetes_fake.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

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
