"""Endpoints and credentials from configuration and environment; the registry."""

from __future__ import annotations

import pytest

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import GatewayError
from services.common.gateway_config import ConfigError, ProviderConfig
from services.provider.adapters.endpoints import public_url, resolve_base_url, resolve_credential
from services.provider.adapters.registry import build_adapter, build_adapters
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from tests.unit.provider.chat import collect, request


def _url(config: ProviderConfig, environ: dict[str, str]) -> str:
    return resolve_base_url(
        "p", config, environ, standard_variable="OPENAI_BASE_URL", default="https://default/v1"
    )


def test_endpoint_precedence() -> None:
    env = {"OPENAI_BASE_URL": "http://standard/v1", "MY_URL": "http://named/v1"}
    assert _url(ProviderConfig(type="openai", base_url="http://file/v1"), env) == "http://file/v1"
    assert _url(ProviderConfig(type="openai", base_url_env="MY_URL"), env) == "http://named/v1"
    assert _url(ProviderConfig(type="openai"), env) == "http://standard/v1"
    assert _url(ProviderConfig(type="openai"), {}) == "https://default/v1"


def test_named_endpoint_variable_must_be_set() -> None:
    with pytest.raises(ConfigError, match="MY_URL is not set"):
        _url(ProviderConfig(type="openai", base_url_env="MY_URL"), {})


def test_credential_variable() -> None:
    config = ProviderConfig(type="openai", api_key_env="K")
    named = resolve_credential(config, {"K": "sk-secret-value"}, "STD", official=False)
    assert (named.variable, named.value) == ("K", "sk-secret-value")
    assert "sk-secret-value" not in repr(named)
    standard = resolve_credential(ProviderConfig(type="openai"), {"STD": ""}, "STD", official=True)
    assert (standard.variable, standard.value) == ("STD", None)


def test_standard_key_never_reaches_an_endpoint_named_in_the_file() -> None:
    environ = {"STD": "sk-real-provider-key"}
    third_party = ProviderConfig(type="openai", base_url="https://api.example.com/v1")
    assert resolve_credential(third_party, environ, "STD", official=False).value is None
    official = ProviderConfig(type="openai", base_url="https://api.openai.com/v1")
    assert resolve_credential(official, environ, "STD", official=True).value == environ["STD"]
    from_environment = ProviderConfig(type="openai")
    assert resolve_credential(from_environment, environ, "STD", official=False).value


def test_public_url_drops_user_information() -> None:
    assert public_url("https://user:secret@host:8443/v1?key=abc") == "https://host:8443/v1"


def test_unknown_type_fails_clearly() -> None:
    config = ProviderConfig.model_construct(type="bogus")
    with pytest.raises(ConfigError, match="unknown provider type 'bogus'"):
        build_adapter("x", config, {})


def test_azure_needs_endpoint_and_version() -> None:
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        build_adapter("az", ProviderConfig(type="azure_openai", api_version="2024-10-21"), {})
    with pytest.raises(ConfigError, match="OPENAI_API_VERSION"):
        build_adapter("az", ProviderConfig(type="azure_openai", base_url="https://x"), {})


@pytest.mark.parametrize(
    ("type_", "variable"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("azure_openai", "AZURE_OPENAI_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
    ],
)
async def test_missing_key_answers_unavailable_naming_the_variable(
    type_: str, variable: str
) -> None:
    environ = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "OPENAI_API_VERSION": "v"}
    adapter = build_adapter("p", ProviderConfig(type=type_), environ)  # type: ignore[arg-type]
    assert isinstance(adapter, UnconfiguredAdapter)
    assert not adapter.info.has_credentials
    for call in (
        adapter.complete(request("m"), 1),
        collect(adapter.stream(request("m"), 1)),
        adapter.list_models(1),
        adapter.check(1),
    ):
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.code.name == "UNAVAILABLE"
        assert variable in caught.value.message
        assert caught.value.metadata == {"provider": "p"}


async def test_standard_variables_configure_every_family() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-openai-123456789",
        "OPENAI_BASE_URL": "http://vllm:8000/v1",
        "ANTHROPIC_API_KEY": "sk-ant-123456789",
        "ANTHROPIC_BASE_URL": "http://claude-proxy:8080",
        "OLLAMA_HOST": "gpu-box",
    }
    adapters = build_adapters(
        {
            "openai": ProviderConfig(type="openai"),
            "anthropic": ProviderConfig(type="anthropic"),
            "ollama": ProviderConfig(type="ollama"),
        },
        environ,
    )
    try:
        infos = {name: adapter.info for name, adapter in adapters.items()}
    finally:
        for adapter in adapters.values():
            await adapter.close()
    assert infos["openai"] == provider_pb2.ProviderInfo(
        name="openai",
        type=provider_pb2.PROVIDER_TYPE_OPENAI,
        base_url="http://vllm:8000/v1",
        has_credentials=True,
    )
    assert infos["anthropic"].base_url == "http://claude-proxy:8080"
    assert infos["ollama"].base_url == "http://gpu-box:11434"
    assert infos["ollama"].type == provider_pb2.PROVIDER_TYPE_OLLAMA
    assert not infos["ollama"].has_credentials
