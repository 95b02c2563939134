"""End-to-end journeys: the stack over the real local model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway, running_local_model_gateway


@pytest.fixture(scope="session")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """llama-server (built on first use) behind the whole stack, by both adapters."""
    with running_local_model_gateway(tmp_path_factory.mktemp("local-gateway")) as running:
        yield running
