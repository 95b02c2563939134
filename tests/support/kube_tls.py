"""A throwaway PKI for the fake Kubernetes API over HTTPS (tests/fakes/kubernetes_fake.py).

What a cluster's CA gives out: the API server's certificate (for 127.0.0.1 and
localhost, as kubectl checks the subject alternative names) and client certificates
whose subject the API server's x509 authenticator reads: CN = user, O = groups.
Keys are P-256, made fresh per test, valid for a day.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes.kube_tls import CA_FILE, SERVER_CERT_FILE


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Writes `<stem>.crt` and `<stem>.key` (the key readable by its owner only)."""
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key


@dataclass(frozen=True)
class CertificateAuthority:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    issued: Issued

    @property
    def cert_pem(self) -> bytes:
        return self.issued.cert_pem


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )


def make_ca(common_name: str = "fake-kubernetes-ca") -> CertificateAuthority:
    """A self-signed CA (the cluster's `ca.crt`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return CertificateAuthority(name, key, Issued(pem, _key_pem(key)))


def _leaf(
    ca: CertificateAuthority,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    san: list[x509.GeneralName],
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca.name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    certificate = builder.sign(ca.key, hashes.SHA256())
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_server_cert(ca: CertificateAuthority) -> Issued:
    """The API server's certificate, valid for 127.0.0.1, ::1 and localhost."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    san: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return _leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, san)


def issue_client_cert(ca: CertificateAuthority, cn: str, groups: tuple[str, ...] = ()) -> Issued:
    """A client certificate for user `cn` in `groups` (the subject's O attributes)."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return _leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def write_tls_dir(directory: Path, ca: CertificateAuthority) -> Path:
    """Writes what `--tls-dir` serves with: the CA (which also checks client
    certificates) and a server certificate it issues. Returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CA_FILE).write_bytes(ca.cert_pem)
    issue_server_cert(ca).write(directory, Path(SERVER_CERT_FILE).stem)
    return directory
