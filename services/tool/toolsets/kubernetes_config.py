"""Where the kubernetes toolset connects, configured the standard way.

- `KUBECONFIG`: a kubeconfig file (its current context): server URL (`https://`, or
  `http://` for a local API), a bearer token or token file, a client certificate and
  key, the cluster's CA or `insecure-skip-tls-verify`. Only the first file of a
  `:`-separated list is read.
- Otherwise in-cluster: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and the
  service account's token, CA and namespace under
  /var/run/secrets/kubernetes.io/serviceaccount (the token file is read again when the
  API answers 401, as the kubelet rotates it).

Both are read with lightkube's own loaders; a file that cannot be used is a startup
error naming the variable, never a silent fallback to another cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from lightkube.config.kubeconfig import SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError

KUBECONFIG_ENV = "KUBECONFIG"
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
SERVICE_PORT_ENV = "KUBERNETES_SERVICE_PORT"


class KubernetesConfigError(ValueError):
    """The environment names a Kubernetes configuration that cannot be used."""


def configured(environ: Mapping[str, str]) -> bool:
    """Whether the environment configures a cluster (the toolset's `auto` switch)."""
    return bool(environ.get(KUBECONFIG_ENV) or environ.get(SERVICE_HOST_ENV))


def _from_kubeconfig(value: str) -> SingleConfig:
    path = Path(value.split(os.pathsep, maxsplit=1)[0]).expanduser()
    try:
        config = KubeConfig.from_file(path).get()
    except ConfigError as error:
        raise KubernetesConfigError(f"{KUBECONFIG_ENV}: {error}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KubernetesConfigError(
            f"{KUBECONFIG_ENV}: {path} is not a usable kubeconfig ({type(error).__name__}: {error})"
        ) from None
    if config is None:
        raise KubernetesConfigError(f"{KUBECONFIG_ENV}: {path} has no current context")
    return config


def _in_cluster(environ: Mapping[str, str], account: Path) -> SingleConfig:
    host = environ[SERVICE_HOST_ENV]
    port = environ.get(SERVICE_PORT_ENV, "443")
    token_file = account / "token"
    try:
        token = token_file.read_text().strip()
        namespace = (account / "namespace").read_text().strip()
    except OSError as error:
        raise KubernetesConfigError(
            f"{SERVICE_HOST_ENV} is set but the service account is unreadable: {error.strerror} "
            f"({error.filename})"
        ) from None
    if ":" in host:
        host = f"[{host}]"
    config = KubeConfig.from_one(
        cluster=Cluster(server=f"https://{host}:{port}", certificate_auth=str(account / "ca.crt")),
        user=User(token=token, token_file=str(token_file)),
        namespace=namespace,
    ).get()
    assert config is not None
    return config


def load_cluster_config(
    environ: Mapping[str, str], service_account: Path = Path(SERVICE_ACCOUNT)
) -> SingleConfig | None:
    """The cluster to talk to; None when the environment configures none."""
    if environ.get(KUBECONFIG_ENV):
        return _from_kubeconfig(environ[KUBECONFIG_ENV])
    if environ.get(SERVICE_HOST_ENV):
        return _in_cluster(environ, service_account)
    return None


def backend_of(config: SingleConfig) -> str:
    """`host:port` of the API server: what the breaker and metrics key by."""
    parts = urlsplit(config.cluster.server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "kubernetes"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
