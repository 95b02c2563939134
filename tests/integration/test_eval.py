"""The investigation eval end to end (eval/): the analyzers alone and the scripted model
over the issue's ten incidents on one gateway, the fake Kubernetes API switched between
them and a real Prometheus behind the error-rate one; each scored by its unique token.
The analyzers alone find it wherever an analyzer covers the class; the scripted model's
root causes stand but for the poisoned claims. In the slow tier, the embedded model on
two scenarios, checked for structure only (its wording is not under test)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eval.run import evaluate
from eval.scenarios import SCENARIOS, by_name
from eval.scoring import Score
from eval.scripts import MADE_UP_EXCERPT, MISSING_CALL_ID, POISONED, SCRIPTS
from tests.support.prometheus import available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not available(), reason="Debian package prometheus is not installed"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Score]]:
    run_dir = tmp_path_factory.mktemp("eval")
    scores, _ = asyncio.run(evaluate(["analyzers", "scripted"], run_dir, progress=print))
    return scores


def _common(scores: list[Score]) -> None:
    assert [s.scenario for s in scores] == [s.name for s in SCENARIOS]
    assert sum(s.evidence_invalid for s in scores) == 0
    assert {s.state for s in scores} == {"succeeded"}
    assert all(s.evidence_valid > 0 for s in scores)


def test_analyzers_alone_find_every_covered_token(results: dict[str, list[Score]]) -> None:
    scores = results["analyzers"]
    _common(scores)
    missed = [(s.scenario, s.token, s.root_cause) for s in scores if s.covered and not s.correct]
    assert not missed
    assert all(s.steps == 0 and s.tokens == 0 and s.model_tool_calls == 0 for s in scores)
    assert not any(s.rejected_claims for s in scores)
    assert {s.model_root for s in scores} == {""}


def test_scripted_model_and_the_poisoned_claims(results: dict[str, list[Score]]) -> None:
    scores = results["scripted"]
    _common(scores)
    assert sum(s.correct for s in scores) >= 9, [(s.scenario, s.root_cause) for s in scores]
    # Each conversation made its one tool call and concluded, its root cause standing.
    assert all(s.model_tool_calls == 1 and s.steps == 2 and s.tokens > 0 for s in scores)
    assert sum(s.model_correct for s in scores) >= 9, [(s.scenario, s.model_root) for s in scores]
    poisoned = next(s for s in scores if s.scenario == POISONED)
    reasons = " | ".join(poisoned.rejected_claims)
    assert len(poisoned.rejected_claims) == 2, reasons
    assert f"{MISSING_CALL_ID} does not exist" in reasons
    assert f"{MADE_UP_EXCERPT}' not found in" in reasons
    assert "the node's disk is full" not in poisoned.finding_titles
    # Two rejections: the model's confidence, times 0.8 twice.
    assert poisoned.confidence == pytest.approx(SCRIPTS[POISONED].confidence * 0.8**2)
    assert not any(s.rejected_claims for s in scores if s.scenario != POISONED)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_embedded_model_on_two_scenarios(tmp_path: Path) -> None:
    chosen = [by_name("crashloop_env_removed"), by_name("pvc_pending")]
    scores, _ = asyncio.run(evaluate(["real"], tmp_path, chosen, progress=print))
    for score in scores["real"]:
        assert score.state != "failed", score
        assert score.tool_calls > 0 and score.evidence_invalid == 0, score
