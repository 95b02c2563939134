"""With only the providers' standard variables set (no configuration file), the gateway
serves their models under their usual names, by catalogue and by prefix."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import openai
import pytest

from tests.fakes import DEFAULT_TEXT
from tests.support.gateway import FAKE_KEYS, FakeUpstream, Gateway, running_gateway

pytestmark = pytest.mark.integration


def _provider_variables(fakes: Mapping[str, FakeUpstream]) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": FAKE_KEYS["openai"],
        "OPENAI_BASE_URL": fakes["openai"].base_url,
        "ANTHROPIC_API_KEY": FAKE_KEYS["anthropic"],
        "ANTHROPIC_BASE_URL": fakes["anthropic"].base_url,
    }


@pytest.fixture(scope="module")
def env_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        Path(tmp_path_factory.mktemp("env-only")), env=_provider_variables, config_file=False
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("gpt-4o", "openai"),  # the built-in catalogue
        ("gpt-5-mini", "openai"),  # the gpt- prefix
        ("claude-sonnet-4-5", "anthropic"),  # the built-in catalogue
        ("claude-opus-5", "anthropic"),  # the claude- prefix
    ],
)
async def test_usual_names_reach_their_provider(
    env_gateway: Gateway, model: str, kind: str
) -> None:
    async with openai.AsyncOpenAI(
        base_url=env_gateway.public_url + "/v1", api_key="unused", max_retries=0
    ) as client:
        reply = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.model == model
    with env_gateway.fakes[kind].control() as control:
        assert control.completions()[-1].json["model"] == model


async def test_catalogue_lists_the_known_models(env_gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(
        base_url=env_gateway.public_url + "/v1", api_key="unused", max_retries=0
    ) as client:
        models = {m.id async for m in client.models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5"} <= models
