"""The configuration file: validation with precise paths, env expansion, env defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.gateway_config import (
    LOCAL_MODEL,
    ConfigError,
    default_config,
    load_config,
    needs_local_model,
    parse_config,
)


def test_unknown_provider_reference_is_named_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "providers": {"openai": {"type": "openai"}},
                "models": [{"name": "m", "deployments": [{"provider": "nope", "model": "x"}]}],
            }
        )
    assert "models.0.deployments.0.provider: unknown provider 'nope'" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "providers": {"p": {"type": "openai", "timeout": -1}},
                "models": [{"name": "a", "deployments": []}],
            }
        )
    message = str(caught.value)
    assert "providers.p.timeout" in message
    assert "models.0.deployments" in message


def test_alias_collision_is_reported() -> None:
    deployment = [{"provider": "p", "model": "x"}]
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "providers": {"p": {"type": "openai"}},
                "models": [
                    {"name": "a", "deployments": deployment},
                    {"name": "b", "aliases": ["a"], "deployments": deployment},
                ],
            }
        )
    assert "models.1.aliases.0: 'a' is already used by models.0.name" in str(caught.value)


def test_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"providerz": {}})
    assert "providerz" in str(caught.value)


def test_file_values_expand_environment_variables(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "providers:\n"
        "  vllm:\n"
        "    type: openai\n"
        "    base_url: ${VLLM_URL:-http://fallback/v1}\n"
        "    api_key_env: VLLM_KEY\n"
    )
    assert load_config(path, {"VLLM_URL": "http://gpu:8000/v1"}).providers["vllm"].base_url == (
        "http://gpu:8000/v1"
    )
    assert load_config(path, {}).providers["vllm"].base_url == "http://fallback/v1"


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("providers: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "cannot read" in str(caught.value)


def test_provider_variables_give_known_models_and_prefixes() -> None:
    config = default_config({"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "k"})
    assert set(config.providers) == {"openai", "anthropic"}
    names = {m.name for m in config.models}
    assert {"gpt-4o", "claude-sonnet-4-5"} <= names
    assert {r.prefix for r in config.prefixes} >= {"gpt-", "claude-"}
    assert config.default_model is not None


def test_no_provider_serves_the_local_model() -> None:
    env = {"LLMGW_LOCAL_MODEL_URL": "http://127.0.0.1:8090"}
    config = default_config(env)
    assert config.providers["local"].base_url == "http://127.0.0.1:8090/v1"
    assert config.default_model == LOCAL_MODEL
    assert needs_local_model(None, {})
    assert not needs_local_model(None, {"OLLAMA_HOST": "gpu:11434"})
    assert not needs_local_model(Path("gateway.yaml"), {})
