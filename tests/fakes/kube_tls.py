"""The fake Kubernetes API's TLS side: what a `--tls-dir` holds, the server's SSL
context over it, and the user a verified client certificate names.

The certificates themselves are made by tests/support/kube_tls.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

# The files of a `--tls-dir`: the CA (of the server and of client certificates alike),
# and the server's certificate and key.
CA_FILE = "ca.crt"
SERVER_CERT_FILE = "server.crt"
SERVER_KEY_FILE = "server.key"


def tls_context(directory: Path) -> ssl.SSLContext:
    """The TLS of a fake serving from `directory` (`CA_FILE`, `SERVER_CERT_FILE`,
    `SERVER_KEY_FILE`): client certificates asked for, not required, and checked
    against the CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / SERVER_CERT_FILE, directory / SERVER_KEY_FILE)
    context.load_verify_locations(cafile=directory / CA_FILE)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def common_name(peer: Any) -> str:
    """The CN of a verified peer certificate as `ssl` reports it; "" for none."""
    if not isinstance(peer, dict):
        return ""
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""
