"""The fake Kubernetes API served over HTTPS from the command line (`--tls-dir`), as
tests in other processes start it: TLS with the directory's server certificate, and
x509 client authentication against its CA (no certificate: a 401 Status)."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from tests.support.kube_tls import CertificateAuthority, issue_client_cert, make_ca, write_tls_dir


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, CertificateAuthority]]:
    ca = make_ca()
    tls = write_tls_dir(tmp_path / "tls", ca)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.kubernetes_fake",
        "--scenario",
        "crashloop",
        "--tls-dir",
        str(tls),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        yield f"https://localhost:{port}", ca
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def _client_tls(ca: CertificateAuthority, tmp_path: Path, cn: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    if cn is not None:
        cert, key = issue_client_cert(ca, cn, ("sre",)).write(tmp_path, cn)
        context.load_cert_chain(cert, key)
    return context


async def test_https_with_a_client_certificate(
    served: tuple[str, CertificateAuthority], tmp_path: Path
) -> None:
    url, ca = served
    async with httpx2.AsyncClient(verify=_client_tls(ca, tmp_path, "alice")) as client:
        answer = await client.get(f"{url}/api/v1/namespaces/shop/pods")
    assert answer.status_code == 200
    assert [pod["metadata"]["name"] for pod in answer.json()["items"]] == [
        "payments-5c8d7f9b6-x2x7q"
    ]


async def test_https_without_a_client_certificate_is_a_401_status(
    served: tuple[str, CertificateAuthority], tmp_path: Path
) -> None:
    url, ca = served
    async with httpx2.AsyncClient(verify=_client_tls(ca, tmp_path, None)) as client:
        answer = await client.get(f"{url}/api/v1/namespaces/shop/pods")
        control = await client.get(f"{url}/_fake/scenario")
    assert answer.status_code == 401
    assert answer.json()["kind"] == "Status" and answer.json()["reason"] == "Unauthorized"
    assert control.json() == {"name": "crashloop"}
