"""Tracing settings from the standard OpenTelemetry variables, checked once at startup.

The services and the Envoy config renderer read the same variables, so one environment
decides for the whole stack whether requests are traced, where spans go and how many:

- `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector (`http://host:4317`); unset or empty, tracing
  is off: no tracer, no exporter thread, nothing added to a request's path.
- `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf` (the specification's default).
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: the standard sampler names; the
  default is `parentbased_always_on`.
- `OTEL_SERVICE_NAME`: the service name the spans carry (else `llmgw-<service>`).
- `OTEL_SDK_DISABLED=true` switches tracing off whatever else is set.

A bad value is a `TracingConfigError` naming the variable, which ends the process with one
line (a `SettingsError`), never a traceback and never a service running without the
tracing its operator asked for.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from services.common.settings import SettingsError

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
PROTOCOL_ENV = "OTEL_EXPORTER_OTLP_PROTOCOL"
SAMPLER_ENV = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_ENV = "OTEL_TRACES_SAMPLER_ARG"
SERVICE_NAME_ENV = "OTEL_SERVICE_NAME"
SDK_DISABLED_ENV = "OTEL_SDK_DISABLED"
# What the launcher hands on to Envoy's render and to every service process.
PASSED_ON = (
    ENDPOINT_ENV,
    PROTOCOL_ENV,
    SAMPLER_ENV,
    SAMPLER_ARG_ENV,
    SERVICE_NAME_ENV,
    SDK_DISABLED_ENV,
)

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL: Protocol = "http/protobuf"
# The standard names this gateway implements (jaeger_remote and xray need extensions).
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"
MAX_SERVICE_NAME = 128


class TracingConfigError(SettingsError):
    """A tracing variable holds a value this gateway cannot use; the message names it."""


@dataclass(frozen=True)
class Collector:
    """Where spans are sent, split as Envoy's cluster needs it."""

    url: str
    scheme: Literal["http", "https"]
    host: str
    port: int

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class TracingSettings:
    """Tracing as the environment asks for it (only built when it is on)."""

    collector: Collector
    protocol: Protocol
    sampler: str
    # The sampled fraction of new traces, 0.0 to 1.0.
    ratio: float
    # OTEL_SERVICE_NAME as given, or "" (each process then names itself).
    service_name: str

    @property
    def parent_based(self) -> bool:
        return self.sampler.startswith("parentbased_")

    @property
    def sampling_percent(self) -> float:
        """The share of new traces sampled, in percent (Envoy's random_sampling)."""
        return round(self.ratio * 100.0, 6)


def _collector(value: str) -> Collector:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracingConfigError(
            f"{ENDPOINT_ENV} must be an http:// or https:// URL with a host "
            f"(e.g. http://127.0.0.1:4317), not {value!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise TracingConfigError(f"{ENDPOINT_ENV} must not carry a query, fragment or credentials")
    if parts.path not in ("", "/"):
        raise TracingConfigError(
            f"{ENDPOINT_ENV} is the collector's base URL, without a path "
            f"(signal paths such as /v1/traces are added), not {value!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise TracingConfigError(f"{ENDPOINT_ENV} has an invalid port: {value!r}") from None
    scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
    if port is None:
        port = 443 if scheme == "https" else 80
    host = parts.hostname
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
    return Collector(url=url, scheme=scheme, host=host, port=port)


def _protocol(value: str) -> Protocol:
    for protocol in PROTOCOLS:
        if value == protocol:
            return protocol
    raise TracingConfigError(f"{PROTOCOL_ENV} must be one of {', '.join(PROTOCOLS)}, not {value!r}")


def _ratio(sampler: str, value: str) -> float:
    if sampler.endswith("always_on"):
        return 1.0
    if sampler.endswith("always_off"):
        return 0.0
    if not value:
        return 1.0
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(
            f"{SAMPLER_ARG_ENV} must be a number from 0 to 1 for {sampler}, not {value!r}"
        )
    return ratio


def _service_name(value: str) -> str:
    if len(value) > MAX_SERVICE_NAME or not value.isprintable():
        raise TracingConfigError(
            f"{SERVICE_NAME_ENV} must be printable and at most {MAX_SERVICE_NAME} characters"
        )
    return value


def tracing_settings(environ: Mapping[str, str] | None = None) -> TracingSettings | None:
    """The tracing the environment asks for; None when it is off (no endpoint)."""
    env = os.environ if environ is None else environ
    if env.get(SDK_DISABLED_ENV, "").strip().lower() == "true":
        return None
    endpoint = env.get(ENDPOINT_ENV, "").strip()
    if not endpoint:
        return None
    sampler = env.get(SAMPLER_ENV, "").strip().lower() or DEFAULT_SAMPLER
    if sampler not in SAMPLERS:
        raise TracingConfigError(
            f"{SAMPLER_ENV} must be one of {', '.join(SAMPLERS)}, not {sampler!r}"
        )
    return TracingSettings(
        collector=_collector(endpoint),
        protocol=_protocol(env.get(PROTOCOL_ENV, "").strip().lower() or DEFAULT_PROTOCOL),
        sampler=sampler,
        ratio=_ratio(sampler, env.get(SAMPLER_ARG_ENV, "").strip()),
        service_name=_service_name(env.get(SERVICE_NAME_ENV, "").strip()),
    )
