"""Spans in OpenTelemetry's GenAI semantic conventions: model calls, tool runs, agents.

- `chat {model}`: the router's view of one chat completion (kind INTERNAL: the gateway's
  work for the caller, model calls, fallbacks and the tool loop as children) and the
  provider's call of the upstream API (kind CLIENT, the HTTP request as its child). Both
  carry gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
  gen_ai.response.model, gen_ai.usage.input_tokens / output_tokens and
  gen_ai.response.finish_reasons.
- `embeddings {model}`: the router's view of one embeddings request (operation
  `embeddings`, the same request and response attributes, input tokens only).
- `execute_tool {tool}`: one tool run in the Tool service (gen_ai.tool.name,
  gen_ai.tool.call.id when the caller gave one).
- `invoke_agent investigation`: one investigation attempt, its model steps and tool calls
  as children.

Every helper is free while tracing is off: it yields a `Recorder` whose methods return at
once. Attributes hold names the catalogue or the configuration bounds, token counts and
enum names; never prompt or answer text (the conventions make content opt-in; this
gateway never records it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common import tracing
from services.common.errors import GatewayError

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
ERROR_TYPE = "error.type"
# The provider instance a call went to (its configured name; gen_ai.provider.name is
# its API family).
GATEWAY_PROVIDER = "llmgw.provider"

# gen_ai.provider.name per configured provider type (the conventions' well-known values;
# Ollama has none, so its own name).
_FAMILIES = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "ollama": "ollama",
}
_FAMILY_OF_TYPE: dict[int, str] = {
    provider_pb2.PROVIDER_TYPE_OPENAI: "openai",
    provider_pb2.PROVIDER_TYPE_AZURE_OPENAI: "azure.ai.openai",
    provider_pb2.PROVIDER_TYPE_ANTHROPIC: "anthropic",
    provider_pb2.PROVIDER_TYPE_OLLAMA: "ollama",
}
_FINISH_PREFIX = "FINISH_REASON_"


def family(provider_type: str) -> str:
    """gen_ai.provider.name of a configured provider type ("azure_openai" ...)."""
    return _FAMILIES.get(provider_type, provider_type)


def family_of(provider_type: int) -> str:
    """gen_ai.provider.name of a ProviderInfo type."""
    return _FAMILY_OF_TYPE.get(provider_type, "unknown")


def finish_reason_name(reason: int) -> str:
    """ "stop", "length", "tool_calls"... of a FinishReason (the conventions' spelling)."""
    return common_pb2.FinishReason.Name(reason).removeprefix(_FINISH_PREFIX).lower()


class Recorder:
    """Sets the attributes of one GenAI span as the call learns them (no-op when off)."""

    __slots__ = ("_finish", "_span")

    def __init__(self, span: Span | None) -> None:
        self._span = span if span is not None and span.is_recording() else None
        self._finish: list[str] = []

    @property
    def recording(self) -> bool:
        return self._span is not None

    def provider(self, name: str, gen_ai_name: str) -> None:
        if self._span is not None:
            self._span.set_attribute(GATEWAY_PROVIDER, name)
            self._span.set_attribute(PROVIDER, gen_ai_name)

    def response_model(self, model: str) -> None:
        if self._span is not None and model:
            self._span.set_attribute(RESPONSE_MODEL, model)

    def response_id(self, response_id: str) -> None:
        if self._span is not None and response_id:
            self._span.set_attribute(RESPONSE_ID, response_id[:128])

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        if self._span is not None:
            self._span.set_attribute(INPUT_TOKENS, input_tokens)
            self._span.set_attribute(OUTPUT_TOKENS, output_tokens)

    def finish_reason(self, reason: int | str) -> None:
        """One more choice's finish reason (an enum value or its name)."""
        if self._span is None:
            return
        name = finish_reason_name(reason) if isinstance(reason, int) else reason
        if name and name != "unspecified":
            self._finish.append(name)
            self._span.set_attribute(FINISH_REASONS, self._finish)

    def completion(self, response: provider_pb2.CompleteResponse) -> None:
        """Everything a provider's unary answer tells."""
        if self._span is None:
            return
        self.response_model(response.model)
        self.response_id(response.id)
        self.finish_reason(response.finish_reason)
        if response.HasField("usage"):
            self.usage(response.usage.input_tokens, response.usage.output_tokens)

    def event(self, event: provider_pb2.StreamCompleteResponse) -> None:
        """What one streamed event tells (model, finish reason, usage)."""
        if self._span is None:
            return
        if event.model and not self._finish:
            self.response_model(event.model)
        if event.finish_reason:
            self.finish_reason(event.finish_reason)
        if event.HasField("usage"):
            self.usage(event.usage.input_tokens, event.usage.output_tokens)


_OFF = Recorder(None)


def _failed(span: Span, error: BaseException) -> None:
    kind = error.code.name if isinstance(error, GatewayError) else type(error).__name__
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, kind))


@contextmanager
def _span(
    name: str,
    kind: SpanKind,
    attributes: dict[str, str],
    *,
    root: bool = False,
    links: Sequence[Link] = (),
) -> Iterator[Recorder]:
    if not tracing.enabled():
        yield _OFF
        return
    with tracing.tracer().start_as_current_span(
        name,
        # An empty context: no parent, whatever span is current.
        context=Context() if root else None,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield Recorder(span)
        except GeneratorExit:
            raise
        except BaseException as error:
            _failed(span, error)
            raise


def chat(request_model: str, *, client: bool) -> AbstractContextManager[Recorder]:
    """`chat {model}` (`chat` when the caller named none and the default model answers):
    kind CLIENT for a call of a model API, else INTERNAL."""
    attributes = {OPERATION: "chat"}
    if request_model:
        attributes[REQUEST_MODEL] = request_model
    return _span(
        f"chat {request_model}" if request_model else "chat",
        SpanKind.CLIENT if client else SpanKind.INTERNAL,
        attributes,
    )


def embeddings(request_model: str) -> AbstractContextManager[Recorder]:
    """`embeddings {model}`: the router's view of one embeddings request (kind INTERNAL;
    its provider calls are children). Carries the answering provider and model and the
    input tokens; never the texts."""
    attributes = {OPERATION: "embeddings"}
    if request_model:
        attributes[REQUEST_MODEL] = request_model
    return _span(
        f"embeddings {request_model}" if request_model else "embeddings",
        SpanKind.INTERNAL,
        attributes,
    )


def execute_tool(tool_name: str, call_id: str = "") -> AbstractContextManager[Recorder]:
    """`execute_tool {tool}` around one tool run."""
    attributes = {OPERATION: "execute_tool", TOOL_NAME: tool_name}
    if call_id:
        attributes[TOOL_CALL_ID] = call_id[:128]
    return _span(f"execute_tool {tool_name}", SpanKind.INTERNAL, attributes)


def invoke_agent(
    agent: str, agent_id: str, model: str, links: Sequence[Link] = ()
) -> AbstractContextManager[Recorder]:
    """`invoke_agent {agent}` around one run of a gateway agent: the root of a new trace
    (a queued job's run), with `links` to the requests that asked for it."""
    attributes = {OPERATION: "invoke_agent", AGENT_NAME: agent, AGENT_ID: agent_id}
    if model:
        attributes[REQUEST_MODEL] = model
    return _span(f"invoke_agent {agent}", SpanKind.INTERNAL, attributes, root=True, links=links)
