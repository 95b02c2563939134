"""Kubeconfig files pointing at the fake Kubernetes API (tests/fakes/kubernetes_fake.py)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path, server: str, *, token: str | None = None, namespace: str = "default"
) -> Path:
    """A kubeconfig with one context over `server` (http:// allowed), authenticating
    with `token` when given, as kubectl and lightkube both read it."""
    user: dict[str, str] = {"token": token} if token is not None else {}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
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
