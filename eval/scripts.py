"""The scripted model's conversations, one per scenario (filled in below)."""

from __future__ import annotations

from eval.scenarios import Scenario
from tests.fakes import Behaviour

POISONED = "crashloop"


def conversation(scenario: Scenario) -> list[Behaviour]:
    raise NotImplementedError(scenario.name)
