"""The kubernetes toolset over HTTPS: the fake API server with a test CA, its server
certificate and x509 client authentication (CN = user), reached through kubeconfigs
that embed or reference the PEMs, through the in-cluster service account, and by the
real `kubectl` (which checks our certificates as Go's TLS does)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import FailedPrecondition, GatewayError, Unavailable
from services.tool.toolsets import kubernetes
from tests.fakes.kube_tls import tls_context
from tests.fakes.kubernetes_fake import SERVICE_ACCOUNT, FakeKubernetes
from tests.support.kube import write_kubeconfig
from tests.support.kube_tls import (
    CertificateAuthority,
    Issued,
    issue_client_cert,
    make_ca,
    write_tls_dir,
)

KUBECTL = shutil.which("kubectl")
TOKEN = "in-cluster-token"
CRASHING = "payments-5c8d7f9b6-x2x7q"


@dataclass
class Cluster:
    fake: FakeKubernetes
    ca: CertificateAuthority
    client: Issued
    tmp: Path

    def kubeconfig(self, name: str, **options: Any) -> Path:
        return write_kubeconfig(self.tmp / name, self.fake.url, namespace="shop", **options)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    ca = make_ca()
    tls = write_tls_dir(tmp_path / "tls", ca)
    async with FakeKubernetes("crashloop", ssl_context=tls_context(tls)) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        yield Cluster(fake, ca, issue_client_cert(ca, "alice", ("sre",)), tmp_path)


async def _list_pods(config: Path) -> Any:
    toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
    assert toolset is not None
    try:
        tool = {t.name: t for t in toolset.tools()}["kubernetes_list_pods"]
        return await tool.run({"namespace": "shop"})
    finally:
        await toolset.close()


async def _refused(kind: type[GatewayError], config: Path) -> GatewayError:
    with pytest.raises(kind) as caught:
        await _list_pods(config)
    return caught.value


async def test_client_certificate_embedded_in_the_kubeconfig(cluster: Cluster) -> None:
    config = cluster.kubeconfig(
        "data",
        ca=cluster.ca.cert_pem,
        client_cert=cluster.client.cert_pem,
        client_key=cluster.client.key_pem,
    )
    assert "client-key-data" in config.read_text()
    result = await _list_pods(config)
    assert [pod["name"] for pod in result["pods"]] == [CRASHING]
    assert {seen.user for seen in cluster.fake.requests} == {"alice"}


async def test_client_certificate_by_file(cluster: Cluster) -> None:
    cert, key = cluster.client.write(cluster.tmp, "alice")
    ca = cluster.tmp / "ca.pem"
    ca.write_bytes(cluster.ca.cert_pem)
    config = cluster.kubeconfig("files", ca=ca, client_cert=cert, client_key=key)
    assert "client-key: " in config.read_text() and "-data" not in config.read_text()
    result = await _list_pods(config)
    assert [pod["name"] for pod in result["pods"]] == [CRASHING]
    assert cluster.fake.requests[-1].user == "alice"


async def test_a_ca_that_did_not_sign_the_server_fails_tls_verification(
    cluster: Cluster,
) -> None:
    config = cluster.kubeconfig(
        "other-ca",
        ca=make_ca("another-cluster").cert_pem,
        client_cert=cluster.client.cert_pem,
        client_key=cluster.client.key_pem,
    )
    error = await _refused(Unavailable, config)
    assert "TLS verification" in error.message and "certificate" in error.message
    assert "Traceback" not in error.message and "PRIVATE KEY" not in error.message
    assert "BEGIN" not in error.message
    assert not cluster.fake.requests


async def test_no_client_certificate_is_refused_credentials(cluster: Cluster) -> None:
    # The handshake succeeds (a real API server only asks for a certificate); the
    # request is anonymous and answered 401.
    error = await _refused(FailedPrecondition, cluster.kubeconfig("none", ca=cluster.ca.cert_pem))
    assert "refused the configured credentials (HTTP 401)" in error.message
    assert cluster.fake.requests and cluster.fake.requests[-1].user == ""


async def test_a_client_certificate_from_another_ca_is_refused(cluster: Cluster) -> None:
    stranger = issue_client_cert(make_ca("stranger"), "mallory")
    config = cluster.kubeconfig(
        "stranger",
        ca=cluster.ca.cert_pem,
        client_cert=stranger.cert_pem,
        client_key=stranger.key_pem,
    )
    # The fake ends the handshake (see tests/fakes/kubernetes_fake.py), a real server
    # answers 401: either way no pod is read as mallory.
    await _refused(Unavailable, config)
    assert all(seen.user != "mallory" for seen in cluster.fake.requests)


async def test_in_cluster_service_account_over_https(cluster: Cluster) -> None:
    cluster.fake.token = TOKEN
    account = cluster.tmp / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN + "\n")
    (account / "namespace").write_text("observability")
    (account / "ca.crt").write_bytes(cluster.ca.cert_pem)
    environ = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(cluster.fake.port),
    }
    toolset = kubernetes.from_env(environ, service_account=account)
    assert toolset is not None
    try:
        tool = {t.name: t for t in toolset.tools()}["kubernetes_list_pods"]
        result = await tool.run({"namespace": "shop"})
    finally:
        await toolset.close()
    assert [pod["name"] for pod in result["pods"]] == [CRASHING]
    assert cluster.fake.requests[-1].user == SERVICE_ACCOUNT


async def _kubectl(config: Path, *args: str) -> tuple[int, str, str]:
    assert KUBECTL is not None
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(config),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
async def test_kubectl_reads_pods_with_the_client_certificate(cluster: Cluster) -> None:
    config = cluster.kubeconfig(
        "kubectl",
        ca=cluster.ca.cert_pem,
        client_cert=cluster.client.cert_pem,
        client_key=cluster.client.key_pem,
    )
    code, out, err = await _kubectl(config, "get", "pods", "-o", "name")
    assert code == 0, err
    assert out.split() == [f"pod/{CRASHING}"]
    assert cluster.fake.requests[-1].user == "alice"
    # No certificate (kubectl would prompt for a password with no credential at all:
    # a token the fake does not accept stands in).
    anonymous = cluster.kubeconfig("kubectl-anonymous", ca=cluster.ca.cert_pem, token="unknown")
    code, _, err = await _kubectl(anonymous, "get", "pods")
    assert code != 0 and "Unauthorized" in err
    wrong_ca = cluster.kubeconfig(
        "kubectl-wrong-ca", ca=make_ca("another").cert_pem, token="unknown"
    )
    code, _, err = await _kubectl(wrong_ca, "get", "pods")
    assert code != 0 and "x509" in err
