"""The OTEL_* variables: off when unset, the standard samplers, and bad values refused at
startup with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.common.server import EXIT_PORT_UNAVAILABLE
from services.common.tracing_config import TracingConfigError, tracing_settings
from services.launcher.stack import REPO_ROOT

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {ENDPOINT: ""},
        {ENDPOINT: "  "},
        {ENDPOINT: "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"},
        # Without an endpoint nothing else is looked at, not even a bad value.
        {"OTEL_TRACES_SAMPLER": "nonsense"},
    ],
)
def test_tracing_is_off_without_an_endpoint(env: dict[str, str]) -> None:
    assert tracing_settings(env) is None


def test_defaults_are_the_specifications() -> None:
    settings = tracing_settings({ENDPOINT: "http://collector:4318"})
    assert settings is not None
    assert settings.protocol == "http/protobuf"
    assert settings.sampler == "parentbased_always_on"
    assert settings.parent_based
    assert settings.sampling_percent == 100.0
    assert settings.service_name == ""
    assert (settings.collector.host, settings.collector.port) == ("collector", 4318)
    assert not settings.collector.is_ip


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio", "parent_based"),
    [
        ("parentbased_traceidratio", "0.25", 0.25, True),
        ("traceidratio", "0", 0.0, False),
        ("traceidratio", "", 1.0, False),
        ("PARENTBASED_ALWAYS_OFF", "", 0.0, True),
        ("always_on", "0.1", 1.0, False),
    ],
)
def test_the_standard_samplers(sampler: str, arg: str, ratio: float, parent_based: bool) -> None:
    settings = tracing_settings(
        {
            ENDPOINT: "https://otel.example.com",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_TRACES_SAMPLER": sampler,
            "OTEL_TRACES_SAMPLER_ARG": arg,
            "OTEL_SERVICE_NAME": "shop",
        }
    )
    assert settings is not None
    assert settings.ratio == ratio
    assert settings.sampling_percent == ratio * 100
    assert settings.parent_based is parent_based
    assert settings.protocol == "grpc"
    assert settings.service_name == "shop"
    assert settings.collector.url == "https://otel.example.com:443"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({ENDPOINT: "127.0.0.1:4317"}, ENDPOINT),
        ({ENDPOINT: "ftp://collector:21"}, ENDPOINT),
        ({ENDPOINT: "http://collector:4318/v1/traces"}, ENDPOINT),
        ({ENDPOINT: "http://collector:99999"}, ENDPOINT),
        ({ENDPOINT: "http://user:pw@collector:4317"}, ENDPOINT),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"}, "_ARG"),
        ({"OTEL_SERVICE_NAME": "x" * 200}, "OTEL_SERVICE_NAME"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(TracingConfigError, match=named):
        tracing_settings({ENDPOINT: "http://127.0.0.1:4317", **env})


def test_a_service_with_a_bad_value_stops_with_one_line() -> None:
    env = {
        **os.environ,
        ENDPOINT: "http://127.0.0.1:4317",
        "OTEL_TRACES_SAMPLER": "sometimes",
        "LLMGW_INTERNAL_SECRET": "s" * 48,
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.session", "--port", "0", "--metrics-port", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 != EXIT_PORT_UNAVAILABLE
    assert done.stderr.strip().splitlines() == [
        "llmgw-session: OTEL_TRACES_SAMPLER must be one of always_on, always_off, "
        "traceidratio, parentbased_always_on, parentbased_always_off, "
        "parentbased_traceidratio, not 'sometimes'"
    ]
