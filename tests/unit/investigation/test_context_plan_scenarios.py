"""The context plan over the eval's ten incident alerts (eval/scenarios.py), its calls
made by the real kubernetes toolset on the fake API in process: the analyzers, given
only those calls (both rounds, as the runner makes them), put the scenario's unique
token in the root cause. A thorough reader finds it (test_analyzers_scenarios.py); this
checks the plan is one, for alerts as Alertmanager labels them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from eval.scenarios import SCENARIOS, Scenario
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import GatewayError
from services.investigation import context_plan
from services.investigation.analyzers import analyze
from services.tool.toolsets import kubernetes
from tests.fakes.kubernetes_fake import FakeKubernetes
from tests.support.kube import write_kubeconfig
from tests.unit.investigation.toolcalls import Calls


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    served = FakeKubernetes("healthy")
    await served.start()
    yield served
    await served.stop()


async def _planned_calls(fake: FakeKubernetes, scenario: Scenario, tmp_path: Path) -> Calls:
    fake.set_scenario(scenario.kube)
    config = write_kubeconfig(tmp_path / "kubeconfig", fake.url)
    toolset = kubernetes.from_env({"KUBECONFIG": str(config)})
    assert toolset is not None
    tools: dict[str, Any] = {t.name: t for t in toolset.tools()}
    alert = json_format.ParseDict(scenario.alert.request(), inv_pb2.Alert())
    calls = Calls()
    try:
        for first in (True, False):
            batch = (
                context_plan.plan(alert, set(tools))
                if first
                else context_plan.followups(calls.made, set(tools))
            )
            for planned in batch:
                arguments = dict(planned.arguments)
                try:
                    result = await tools[planned.tool].run(arguments)
                except GatewayError as error:
                    calls.failed(planned.tool, arguments, type(error).__name__, error.message)
                else:
                    calls.ok(planned.tool, arguments, result)
    finally:
        await toolset.close()
    return calls


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_the_planned_calls_give_the_analyzers_the_token(
    fake: FakeKubernetes, scenario: Scenario, tmp_path: Path
) -> None:
    calls = await _planned_calls(fake, scenario, tmp_path)
    alert = json_format.ParseDict(scenario.alert.request(), inv_pb2.Alert())
    findings = analyze(calls.made, alert_started=alert.starts_at.ToDatetime(UTC))
    root = next((f.root_cause for f in findings if f.root_cause), "")
    made = [(c.tool, c.arguments) for c in calls.made]
    assert scenario.token.casefold() in root.casefold(), (root, made)
    assert len(calls.made) <= context_plan.MAX_PLANNED_CALLS + context_plan.MAX_FOLLOWUP_CALLS
