"""Model resolution: names, aliases, prefixes, the default, and precise NOT_FOUND."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.errors import InvalidArgument, NotFound, find_detail
from services.common.gateway_config import ConfigError, parse_config
from services.router.catalog import Catalog
from services.router.routing.stats import upstream_key

CONFIG = {
    "providers": {
        "openai": {"type": "openai"},
        "anthropic": {"type": "anthropic"},
        "ollama": {"type": "ollama"},
    },
    "models": [
        {
            "name": "gpt-4o",
            "aliases": ["smart"],
            "deployments": [{"provider": "openai", "model": "gpt-4o-2024-08-06"}],
        },
        {"name": "claude-sonnet-4-5", "deployments": [{"provider": "anthropic", "model": "c"}]},
    ],
    "prefixes": [
        {"prefix": "gpt-", "provider": "openai"},
        {"prefix": "claude-", "provider": "anthropic"},
        {"prefix": "ollama/", "provider": "ollama", "strip_prefix": True},
    ],
    "default_model": "smart",
}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(parse_config(CONFIG))


def test_catalogue_name_maps_to_its_deployment(catalog: Catalog) -> None:
    resolved = catalog.resolve("gpt-4o")
    assert resolved.name == "gpt-4o"
    assert resolved.source == "catalogue"
    assert [(d.provider, d.model) for d in resolved.deployments] == [
        ("openai", "gpt-4o-2024-08-06")
    ]


def test_alias_resolves_to_canonical_name(catalog: Catalog) -> None:
    assert catalog.resolve("smart").name == "gpt-4o"


def test_empty_model_uses_the_default(catalog: Catalog) -> None:
    assert catalog.resolve("").name == "gpt-4o"


def test_prefix_rule_keeps_name_and_routes_to_provider(catalog: Catalog) -> None:
    resolved = catalog.resolve("gpt-4.1-mini")
    assert resolved.source == "provider"
    assert resolved.name == "gpt-4.1-mini"
    assert (resolved.deployments[0].provider, resolved.deployments[0].model) == (
        "openai",
        "gpt-4.1-mini",
    )


def test_prefix_routed_names_share_one_bounded_key_and_label(catalog: Catalog) -> None:
    # The caller chooses these names: none becomes a label, a stats or a breaker key.
    first, second = catalog.resolve("gpt-random-1"), catalog.resolve("gpt-random-2")
    assert first.label == second.label == "other"
    keys = {upstream_key(r.deployments[0]) for r in (first, second)}
    assert keys == {"prefix:openai/gpt-*"}
    assert {r.deployments[0].key for r in (first, second)} == {"prefix:openai/gpt-*"}
    # Catalogue models keep their names.
    assert catalog.resolve("smart").label == "gpt-4o"
    assert upstream_key(catalog.resolve("gpt-4o").deployments[0]) == "openai/gpt-4o-2024-08-06"


def test_a_configured_deployment_id_may_not_look_like_a_prefix_route() -> None:
    bad = {
        "providers": {"openai": {"type": "openai"}},
        "models": [
            {"name": "m", "deployments": [{"provider": "openai", "model": "x", "id": "prefix:a"}]}
        ],
    }
    with pytest.raises(ConfigError, match="prefix:"):
        parse_config(bad)


def test_strip_prefix_rule_removes_prefix_upstream(catalog: Catalog) -> None:
    resolved = catalog.resolve("ollama/llama3.2")
    assert resolved.name == "ollama/llama3.2"
    assert resolved.deployments[0].model == "llama3.2"


def test_unknown_model_is_not_found_naming_it(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.resolve("mistral-large")
    error = caught.value
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert "mistral-large" in error.message
    assert "gpt-4o" in error.message and "claude-*" in error.message
    status = error.to_status()
    info = find_detail(status, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "MODEL_NOT_FOUND"
    resource = find_detail(status, error_details_pb2.ResourceInfo)
    assert resource is not None
    assert (resource.resource_type, resource.resource_name) == ("model", "mistral-large")


def test_bare_strip_prefix_is_not_a_model(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        catalog.resolve("ollama/")


def test_no_default_and_no_model_is_invalid() -> None:
    catalog = Catalog(parse_config({"providers": {"o": {"type": "openai"}}}))
    with pytest.raises(InvalidArgument) as caught:
        catalog.resolve("")
    assert caught.value.violations[0].field == "model"
