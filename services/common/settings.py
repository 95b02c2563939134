"""Typed process settings, read once in each service's main().

Sources, later wins: defaults, `LLMGW_*` environment variables, command-line flags.
A bad value stops the process at start with one clear line naming the variable.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from services.common.identity.assertion import check_secret

# Default ports of each service: gRPC and Prometheus /metrics.
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "router": (50051, 9101),
    "provider": (50052, 9102),
    "session": (50053, 9103),
    "tool": (50054, 9104),
    "investigation": (50055, 9105),
}


MIN_ADMIN_KEY_LENGTH = 24


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


class PortUnavailable(SettingsError):
    """The configured address cannot be bound (in use, or not an address of this host)."""


class ServiceSettings(BaseModel):
    """Settings every service process shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    metrics_port: int = Field(ge=0, le=65535)
    # Replica name in logs and metrics (the launcher sets `router-1`, ...).
    replica: str = ""
    # The gateway configuration file (providers, catalogue, tools); None: built-in default.
    config_path: Path | None = None
    # Redis for services that keep state; None where the service needs none.
    redis_url: str | None = None
    # Envoy's internal listener: every service-to-service call goes through it.
    internal_target: str = "127.0.0.1:8081"
    log_level: str = "INFO"
    # One access-log line per RPC (Envoy logs every request too).
    access_log: bool = True
    # Seconds in-flight RPCs get to finish on SIGTERM.
    shutdown_grace: float = Field(default=10.0, ge=0)
    # Seconds between readiness probes of required dependencies.
    readiness_interval: float = Field(default=1.0, gt=0)
    # Where to write the bound ports as JSON once serving (supervisors that start
    # services on port 0 read them here).
    port_file: Path | None = None
    # API keys on every public RPC ("required"), or none ("off": allowed only while the
    # service listens on loopback; the launcher decides from Envoy's public address).
    auth: Literal["off", "required"] = "off"
    # The bootstrap admin credential (creates the first consumers and keys).
    admin_key: SecretStr | None = None
    # Signs the calls services make to each other and derives Envoy's edge token; the
    # same for every service of one gateway (services/common/identity/assertion.py).
    internal_secret: SecretStr | None = None
    # The longest any RPC may run, in seconds: a caller's longer deadline is clipped to
    # it, and a call without one gets it, so every internal call has a deadline.
    request_deadline: float = Field(default=600.0, gt=0, le=86_400)

    @field_validator("auth", mode="before")
    @classmethod
    def _auth(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("admin_key")
    @classmethod
    def _admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_ADMIN_KEY_LENGTH} characters")
        return value

    @field_validator("internal_secret")
    @classmethod
    def _internal_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("config_path")
    @classmethod
    def _config_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


_ENV = {
    "host": "LLMGW_HOST",
    "port": "LLMGW_PORT",
    "metrics_port": "LLMGW_METRICS_PORT",
    "replica": "LLMGW_REPLICA",
    "config_path": "LLMGW_CONFIG",
    "redis_url": "LLMGW_REDIS_URL",
    "internal_target": "LLMGW_INTERNAL_ADDR",
    "log_level": "LLMGW_LOG_LEVEL",
    "access_log": "LLMGW_ACCESS_LOG",
    "shutdown_grace": "LLMGW_SHUTDOWN_GRACE",
    "readiness_interval": "LLMGW_READINESS_INTERVAL",
    "port_file": "LLMGW_PORT_FILE",
    "auth": "LLMGW_AUTH",
    "admin_key": "LLMGW_ADMIN_KEY",
    "internal_secret": "LLMGW_INTERNAL_SECRET",
    "request_deadline": "LLMGW_REQUEST_DEADLINE",
}


def load_settings(
    service: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServiceSettings:
    """Build the settings of `service` from defaults, environment and flags."""
    env = os.environ if environ is None else environ
    port, metrics_port = DEFAULT_PORTS[service]
    values: dict[str, object] = {"service": service, "port": port, "metrics_port": metrics_port}
    for field, var in _ENV.items():
        if env.get(var, "") != "":
            values[field] = env[var]
    parser = argparse.ArgumentParser(prog=f"llmgw-{service}", description=f"llm-gateway {service}")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--metrics-port", type=int, dest="metrics_port")
    parser.add_argument("--replica")
    parser.add_argument("--config", dest="config_path")
    parser.add_argument("--redis-url", dest="redis_url")
    parser.add_argument("--internal-addr", dest="internal_target")
    parser.add_argument("--log-level", dest="log_level")
    parser.add_argument("--port-file", dest="port_file")
    args = parser.parse_args(list(argv) if argv is not None else None)
    values.update({k: v for k, v in vars(args).items() if v is not None})
    try:
        return ServiceSettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            source = _ENV.get(field, field)
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{source}: {message}")
        raise SettingsError(f"invalid {service} settings: " + "; ".join(problems)) from None


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
