"""The model loop of an investigation: bounded steps of model calls, the tool calls the
model asks for, and the conclusion it ends with.

Every limit ends the loop with what it has, never with an error: the step limit (the
last step offers no tools and asks for the JSON conclusion), the time limit, the token
and cost budgets, the model being unavailable, and a cancel. The outcome says which.
Tool calls the model asks for are checked before they run: an unknown tool, arguments
that are not a JSON object, a call already made and calls past the per-step cap are
refused to the model in a tool message, and nothing runs for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.router.v1 import chat_pb2 as router_chat_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import GatewayError
from services.investigation import conclusion, prompts
from services.investigation.calls import PlannedCall, ToolCall
from services.investigation.chat_client import ChatClient, ModelAnswer, ModelToolCall, message
from services.investigation.conclusion import Conclusion
from services.investigation.limits import Limits
from services.investigation.toolbox import Toolbox

# A model call is not started with less time than this left.
MIN_CALL_SECONDS = 1.0

OnStep = Callable[[int], Awaitable[None]]
OnToolCall = Callable[[ToolCall], Awaitable[None]]


@dataclass
class LoopOutcome:
    """How the loop ended. `partial_reason` 0: the model concluded by itself."""

    conclusion: Conclusion | None
    steps: int
    model: str
    partial_reason: inv_pb2.PartialReason = inv_pb2.PARTIAL_REASON_UNSPECIFIED
    partial_detail: str = ""


class _Stop(Exception):
    """A limit ended the loop."""

    def __init__(self, reason: inv_pb2.PartialReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ModelLoop:
    """One investigation's model loop. Usage accumulates on the loop (`input_tokens`,
    `output_tokens`, `cost`) whatever ends it."""

    def __init__(
        self,
        chat: ChatClient,
        toolbox: Toolbox,
        *,
        model: str,
        limits: Limits,
        deadline: float,
        max_calls_per_step: int,
        investigation_id: str,
        attempt: int,
        cancelled: asyncio.Event,
        on_step: OnStep,
        on_tool_call: OnToolCall,
        context_window: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The tools as every step offers them, built once; what they take in a request
        # counts against a small model's window (prompts.budget_for).
        self._tools = [_definition(name, tool) for name, tool in sorted(toolbox.tools.items())]
        self.budget = prompts.budget_for(
            context_window,
            sum(len(json_format.MessageToJson(t, indent=None)) for t in self._tools),
        )
        self._chat = chat
        self._toolbox = toolbox
        self._model = model
        self._limits = limits
        self._deadline = deadline
        self._per_step = max_calls_per_step
        self._id = investigation_id
        self._attempt = attempt
        self._cancelled = cancelled
        self._on_step = on_step
        self._on_tool_call = on_tool_call
        self._clock = clock
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.model_used = ""
        self._messages: list[router_chat_pb2.ChatMessage] = []

    async def run(self, first: str) -> LoopOutcome:
        self._messages = [message("system", prompts.INSTRUCTIONS), message("user", first)]
        steps = self._limits.max_steps
        wanted_tools = False
        step = 0
        try:
            for step in range(1, steps + 1):
                last = step == steps
                await self._on_step(step)
                answer = await self._call(step, offer_tools=not last)
                if answer.tool_calls and not last:
                    wanted_tools = True
                    await self._run_tools(answer, step)
                    continue
                found = conclusion.parse(answer.content)
                if found is not None:
                    if last and wanted_tools:
                        return self._outcome(
                            found,
                            step,
                            inv_pb2.PARTIAL_REASON_STEP_LIMIT,
                            f"the model used all {steps} steps; its conclusion was asked for "
                            "without further tool calls",
                        )
                    return self._outcome(found, step)
                wanted_tools = False
                self._messages.append(message("assistant", answer.content or ""))
                self._messages.append(message("user", prompts.RETRY_JSON))
            return self._outcome(
                None,
                step,
                inv_pb2.PARTIAL_REASON_STEP_LIMIT,
                f"the model gave no readable conclusion within {steps} steps",
            )
        except _Stop as stop:
            return self._outcome(None, step, stop.reason, stop.detail)

    def _outcome(
        self,
        found: Conclusion | None,
        step: int,
        reason: inv_pb2.PartialReason = inv_pb2.PARTIAL_REASON_UNSPECIFIED,
        detail: str = "",
    ) -> LoopOutcome:
        return LoopOutcome(found, step, self.model_used, reason, detail)

    def _check_limits(self) -> float:
        """Seconds left for the next call; raises _Stop when a limit is reached."""
        if self._cancelled.is_set():
            raise _Stop(inv_pb2.PARTIAL_REASON_CANCELLED, "cancelled by a caller")
        left = self._deadline - self._clock()
        if left < MIN_CALL_SECONDS:
            raise _Stop(
                inv_pb2.PARTIAL_REASON_TIME_LIMIT,
                f"the time limit of {self._limits.time_limit_s:g}s passed",
            )
        if self.input_tokens + self.output_tokens >= self._limits.max_tokens:
            raise _Stop(
                inv_pb2.PARTIAL_REASON_TOKEN_BUDGET,
                f"the token budget of {self._limits.max_tokens} was spent",
            )
        if self._limits.max_cost and self.cost >= self._limits.max_cost:
            raise _Stop(
                inv_pb2.PARTIAL_REASON_COST_BUDGET,
                f"the cost budget of {self._limits.max_cost:g} was spent",
            )
        return left

    def _request(self, step: int, offer_tools: bool) -> router_chat_pb2.CreateChatCompletionRequest:
        left_tokens = self._limits.max_tokens - self.input_tokens - self.output_tokens
        request = router_chat_pb2.CreateChatCompletionRequest(
            model=self._model,
            messages=self._messages,
            max_tokens=max(1, min(self.budget.call_tokens, left_tokens)),
        )
        request.gateway.cache = "bypass"
        request.gateway.request_id = f"inv.{self._id}.a{self._attempt}.s{step}"
        if offer_tools and self._tools and self.budget.offer_tools:
            request.tools.extend(self._tools)
            request.tool_choice.string_value = "auto"
        else:
            if self._messages[-1].role != "user":
                self._messages.append(message("user", prompts.FINAL_STEP))
                request.messages.append(self._messages[-1])
            request.response_format.type = "json_schema"
            request.response_format.json_schema.name = "investigation_conclusion"
            request.response_format.json_schema.schema.update(conclusion.SCHEMA)
        return request

    async def _call(self, step: int, *, offer_tools: bool) -> ModelAnswer:
        left = self._check_limits()
        request = self._request(step, offer_tools)
        task = asyncio.ensure_future(
            self._chat.complete(request, timeout=left, investigation=f"investigations/{self._id}")
        )
        cancel = asyncio.ensure_future(self._cancelled.wait())
        try:
            await asyncio.wait({task, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise _Stop(inv_pb2.PARTIAL_REASON_CANCELLED, "cancelled by a caller")
        try:
            answer = task.result()
        except GatewayError as error:
            if self._deadline - self._clock() < MIN_CALL_SECONDS:
                raise _Stop(
                    inv_pb2.PARTIAL_REASON_TIME_LIMIT,
                    f"the time limit of {self._limits.time_limit_s:g}s passed during a model call",
                ) from None
            raise _Stop(
                inv_pb2.PARTIAL_REASON_MODEL_UNAVAILABLE,
                f"the model could not answer ({error.code.name}): {error.message}",
            ) from None
        self.input_tokens += answer.input_tokens
        self.output_tokens += answer.output_tokens
        self.cost += answer.cost
        self.model_used = answer.model or self.model_used
        return answer

    async def _run_tools(self, answer: ModelAnswer, step: int) -> None:
        self._messages.append(_assistant_turn(answer))
        refusals: dict[str, str] = {}
        accepted: list[tuple[ModelToolCall, PlannedCall]] = []
        keys: set[str] = set()
        for index, requested in enumerate(answer.tool_calls):
            planned, refusal = self._check_call(requested, index)
            if planned is not None and planned.key() in keys:
                refusal = "refused: the same call is already part of this step"
            if refusal or planned is None:
                refusals[requested.id] = refusal
                continue
            keys.add(planned.key())
            accepted.append((requested, planned))
        made = await self._toolbox.call_many([p for _, p in accepted], step)
        results = {requested.id: call for (requested, _), call in zip(accepted, made, strict=True)}
        for call in made:
            await self._on_tool_call(call)
        for requested in answer.tool_calls:
            if requested.id in results:
                content = prompts.tool_message(results[requested.id], self.budget.call_bytes)
            else:
                content = refusals[requested.id]
            self._messages.append(message("tool", content, tool_call_id=requested.id))

    def _check_call(self, requested: ModelToolCall, index: int) -> tuple[PlannedCall | None, str]:
        if index >= self._per_step:
            return None, (
                f"refused: at most {self._per_step} tool calls run per step; ask again "
                "next step if it is still needed"
            )
        if requested.name not in self._toolbox.tools:
            offered = ", ".join(sorted(self._toolbox.tools)) or "none"
            return None, f"refused: there is no tool {requested.name[:64]!r}; tools: {offered}"
        try:
            arguments: Any = json.loads(requested.arguments or "{}")
        except ValueError:
            return None, "refused: the arguments are not valid JSON"
        if not isinstance(arguments, dict):
            return None, "refused: the arguments must be a JSON object"
        planned = PlannedCall(requested.name, arguments, reason="asked for by the model")
        previous = self._toolbox.previous(planned)
        if previous is not None:
            return None, (
                f"refused: this exact call was already made as [{previous.id}]; its output is above"
            )
        return planned, ""


def _definition(name: str, tool: tool_pb2.Tool) -> router_chat_pb2.ChatTool:
    entry = router_chat_pb2.ChatTool(type="function")
    entry.function.name = name
    entry.function.description = tool.description
    entry.function.parameters.CopyFrom(tool.parameters)
    return entry


def _assistant_turn(answer: ModelAnswer) -> router_chat_pb2.ChatMessage:
    turn = router_chat_pb2.ChatMessage(role="assistant")
    if answer.content:
        turn.content.string_value = answer.content
    else:
        turn.content.null_value = struct_pb2.NULL_VALUE
    for call in answer.tool_calls:
        entry = turn.tool_calls.add(id=call.id, type="function")
        entry.function.name = call.name
        entry.function.arguments = call.arguments
    return turn
