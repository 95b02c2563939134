"""One attempt at an investigation, as a worker runs it: context, analyzers, the model
loop, verification, and the stored result.

Everything runs under the investigation owner's identity (the calls to the Tool service
and the Router vouch for the owner), so the owner's access, limits and budgets apply. A
takeover (attempt > 1) reads the earlier attempt's tool calls from the event log and
neither repeats nor renumbers them; the time limit counts from the first start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common import context, genai_spans
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import GatewayError
from services.common.investigation_config import InvestigationConfig
from services.common.tool_client import ToolClient
from services.investigation import context_plan, metrics, prompts
from services.investigation.analyzers import AnalyzerFinding, analyze
from services.investigation.calls import ToolCall
from services.investigation.chat_client import ChatClient
from services.investigation.jobs import Job, JobStore
from services.investigation.limits import Limits, effective_limits
from services.investigation.model_loop import LoopOutcome, ModelLoop
from services.investigation.result import Ending, build, finding_proto, verified_analyzer_findings
from services.investigation.toolbox import Toolbox, to_invocation

log = logging.getLogger("llmgw.investigation")

# `model: none` asks for the analyzers alone.
NO_MODEL = "none"
# Time allowed to list the tools.
LIST_TOOLS_SECONDS = 10.0


class Runner:
    """Runs investigations claimed by this replica's worker."""

    def __init__(
        self,
        store: JobStore,
        tools: ToolClient,
        chat: ChatClient,
        config: Callable[[], InvestigationConfig],
        default_model: Callable[[], str | None],
        *,
        context_window: Callable[[str], int | None] = lambda model: None,
        redis: aioredis.Redis | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._tools = tools
        self._chat = chat
        self._config = config
        self._default_model = default_model
        self._context_window = context_window
        self._redis = redis
        self._clock = clock
        self._monotonic = monotonic

    async def run(self, job: Job) -> None:
        """One attempt, traced as `invoke_agent investigation`: a trace of its own (the
        job outlives the request that created it, and another replica may run it) with
        a Link to that request's span; the model steps and tool calls it makes are its
        children."""
        caller = set_caller(Caller(None, job.owner, job.key_name))
        rid = context.request_id.set(f"inv-{job.id}-a{job.attempt}")
        metrics.RUNNING.inc()
        try:
            model = self._model(job.investigation)
            with genai_spans.invoke_agent(
                "investigation", job.id, "" if model == NO_MODEL else model, job.origin.links()
            ):
                await self._run(job)
        finally:
            metrics.RUNNING.dec()
            context.request_id.reset(rid)
            reset_caller(caller)

    def _model(self, investigation: inv_pb2.Investigation) -> str:
        return investigation.model or self._default_model() or NO_MODEL

    async def _progress(self, job: Job, stage: str, text: str, percent: int) -> None:
        await self._store.emit(
            job,
            inv_pb2.InvestigationEvent(
                progress=inv_pb2.Progress(stage=stage, message=text, percent=percent)
            ),
        )
        job.investigation.progress_percent = percent
        await self._store.update(job, job.investigation)

    async def _tool_call(self, job: Job, call: ToolCall) -> None:
        metrics.observe_tool_call(call.toolset, call.tool, call.requested_by, call.ok)
        await self._store.emit(job, inv_pb2.InvestigationEvent(tool_call=to_invocation(call)))

    async def _run(self, job: Job) -> None:
        config = self._config()
        investigation = job.investigation
        limits = effective_limits(investigation.limits, config)
        started = _started(investigation)
        elapsed = max(0.0, self._clock() - started) if started else 0.0
        deadline = self._monotonic() + max(0.0, limits.time_limit_s - elapsed)
        toolbox = Toolbox(
            self._tools,
            owner=job.owner,
            toolsets=list(investigation.toolsets),
            timeout_s=config.tool_timeout_seconds,
            redis=self._redis,
            cache_ttl_s=config.context_cache_seconds,
        )
        if job.attempt > 1:
            history = await self._store.history(job.id)
            toolbox.restore(e.tool_call for e in history if e.HasField("tool_call"))
        await self._progress(job, "gathering_context", "reading the alert's context", 5)
        try:
            await toolbox.load(LIST_TOOLS_SECONDS)
        except GatewayError as error:
            log.warning("investigation %s: no toolsets (%s)", job.id, error.message)
        await self._gather(job, toolbox)
        await self._progress(job, "analyzing", "running the analyzers", 30)
        alert = investigation.alert
        alert_started = alert.starts_at.ToDatetime(UTC) if alert.HasField("starts_at") else None
        findings = verified_analyzer_findings(
            analyze(toolbox.calls, alert_started=alert_started), toolbox.by_id()
        )
        for finding in findings:
            await self._store.emit(job, inv_pb2.InvestigationEvent(finding=finding_proto(finding)))
        outcome = await self._model_loop(job, toolbox, findings, limits, deadline)
        await self._finish(job, toolbox, findings, outcome)

    async def _gather(self, job: Job, toolbox: Toolbox) -> None:
        alert = job.investigation.alert
        available = set(toolbox.tools)
        rounds = (
            lambda: context_plan.plan(alert, available),
            lambda: context_plan.followups(toolbox.calls, available),
            lambda: context_plan.from_logs(toolbox.calls, available),
        )
        for next_round in rounds:
            if job.cancelled.is_set():
                return
            for call in await toolbox.gather(next_round()):
                await self._tool_call(job, call)

    async def _model_loop(
        self,
        job: Job,
        toolbox: Toolbox,
        findings: list[AnalyzerFinding],
        limits: Limits,
        deadline: float,
    ) -> _Outcome:
        model = self._model(job.investigation)
        if job.cancelled.is_set():
            return _Outcome(
                LoopOutcome(None, 0, "", inv_pb2.PARTIAL_REASON_CANCELLED, "cancelled by a caller")
            )
        if model == NO_MODEL:
            return _Outcome(LoopOutcome(None, 0, ""))
        max_steps = limits.max_steps

        async def on_step(step: int) -> None:
            percent = 30 + int(60 * (step - 1) / max_steps)
            await self._progress(job, "model_step", f"model step {step} of {max_steps}", percent)

        loop = ModelLoop(
            self._chat,
            toolbox,
            model=model,
            limits=limits,
            deadline=deadline,
            max_calls_per_step=self._config().max_tool_calls_per_step,
            investigation_id=job.id,
            attempt=job.attempt,
            cancelled=job.cancelled,
            on_step=on_step,
            on_tool_call=lambda call: self._tool_call(job, call),
            context_window=self._context_window(model),
            clock=self._monotonic,
        )
        first, _ = prompts.first_message(
            job.investigation.alert, toolbox.calls, findings, budget=loop.budget
        )
        outcome = await loop.run(first)
        return _Outcome(outcome, loop.input_tokens, loop.output_tokens, loop.cost)

    async def _finish(
        self,
        job: Job,
        toolbox: Toolbox,
        findings: list[AnalyzerFinding],
        outcome: _Outcome,
    ) -> None:
        await self._progress(job, "verifying", "checking every claim's evidence", 95)
        loop = outcome.loop
        result = build(
            findings,
            loop.conclusion,
            toolbox.calls,
            Ending(loop.steps, loop.model, loop.partial_reason, loop.partial_detail),
        )
        for finding in result.findings:
            if finding.origin == "model":
                await self._store.emit(job, inv_pb2.InvestigationEvent(finding=finding))
        investigation = job.investigation
        investigation.usage.input_tokens += outcome.input_tokens
        investigation.usage.output_tokens += outcome.output_tokens
        investigation.usage.total_tokens += outcome.input_tokens + outcome.output_tokens
        investigation.cost += outcome.cost
        cancelled = loop.partial_reason == inv_pb2.PARTIAL_REASON_CANCELLED
        state = (
            inv_pb2.INVESTIGATION_STATE_CANCELLED
            if cancelled
            else inv_pb2.INVESTIGATION_STATE_SUCCEEDED
        )
        metrics.observe_usage(outcome.input_tokens, outcome.output_tokens, outcome.cost)
        await self._store.finish(
            job,
            state,
            result=result,
            error=None,
            usage=investigation.usage,
            cost=investigation.cost,
        )
        started = _started(investigation)
        metrics.observe_finished(state, result, self._clock() - started if started else 0.0)


def _started(investigation: inv_pb2.Investigation) -> float:
    """Unix seconds of the first start (0: not started)."""
    if not investigation.HasField("start_time"):
        return 0.0
    return investigation.start_time.ToNanoseconds() / 1e9


@dataclass
class _Outcome:
    loop: LoopOutcome
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
