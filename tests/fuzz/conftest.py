"""The fuzz tier's gateway and budget.

`make test` runs a bounded, reproducible budget (LLMGW_FUZZ_EXAMPLES, default 800 inputs,
derandomized); `make fuzz` runs a long, random one. The gateway is this tier's own: the
fuzzed admin RPCs create consumers, groups, tools and sessions nobody else should see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.gateway import Gateway, running_gateway

BUDGET = int(os.environ.get("LLMGW_FUZZ_EXAMPLES", "800"))
RANDOM = os.environ.get("LLMGW_FUZZ_RANDOM", "") == "1"
# Each surface's share of the budget.
SHARES = {"grpc": 0.45, "raw": 0.15, "rest": 0.40}


def fuzz_settings(surface: str) -> settings:
    return settings(
        max_examples=max(int(BUDGET * SHARES[surface]), 1),
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@pytest.fixture(scope="session")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(
        Path(tmp_path_factory.mktemp("fuzz")), replicas={"router": 1, "provider": 1}
    ) as running:
        yield running
