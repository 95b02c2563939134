"""Where the kubernetes toolset finds its cluster: KUBECONFIG, else the in-cluster
service account, else nowhere (no toolset); an unusable configuration names its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.tool.toolsets import kubernetes
from services.tool.toolsets.kubernetes_config import KubernetesConfigError
from tests.support.kube_tls import make_ca


def test_no_environment_means_no_toolset() -> None:
    assert kubernetes.from_env({}) is None


def test_unusable_kubeconfig_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(KubernetesConfigError, match="KUBECONFIG"):
        kubernetes.from_env({"KUBECONFIG": str(tmp_path / "missing")})
    broken = tmp_path / "broken"
    broken.write_text("clusters: 3\n")
    with pytest.raises(KubernetesConfigError, match="KUBECONFIG"):
        kubernetes.from_env({"KUBECONFIG": str(broken)})


async def test_in_cluster_service_account(tmp_path: Path) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("in-cluster-token\n")
    (account / "namespace").write_text("observability")
    (account / "ca.crt").write_bytes(make_ca().cert_pem)
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    toolset = kubernetes.from_env(environ, service_account=account)
    assert toolset is not None
    try:
        assert toolset.backend == "10.96.0.1:443"
        assert toolset._client.config.cluster.server == "https://10.96.0.1:443"
    finally:
        await toolset.close()
    (account / "token").unlink()
    with pytest.raises(KubernetesConfigError, match="service account is unreadable"):
        kubernetes.from_env(environ, service_account=account)
