"""A provider stream gathered into its message: text, parallel tool calls, usage."""

from __future__ import annotations

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.stream_assembly import StreamAssembly


def _piece(
    index: int, arguments: str, id: str = "", name: str = ""
) -> provider_pb2.StreamCompleteResponse:
    return provider_pb2.StreamCompleteResponse(
        tool_call=provider_pb2.ToolCallDelta(index=index, id=id, name=name, arguments=arguments)
    )


def test_interleaved_parallel_tool_calls_assemble_by_index() -> None:
    assembly = StreamAssembly()
    events = [
        provider_pb2.StreamCompleteResponse(text="Checking "),
        provider_pb2.StreamCompleteResponse(text="both."),
        _piece(0, '{"ci', id="call_a", name="weather"),
        _piece(1, '{"city": ', id="call_b", name="weather"),
        _piece(0, 'ty": "Paris"}'),
        _piece(1, '"Rome"}'),
        provider_pb2.StreamCompleteResponse(finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS),
        provider_pb2.StreamCompleteResponse(
            usage=common_pb2.Usage(input_tokens=7, output_tokens=5)
        ),
    ]
    for event in events:
        assembly.add(event)
    message = assembly.message()
    assert message.role == common_pb2.ROLE_ASSISTANT
    assert [p.text for p in message.content] == ["Checking both."]
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [
        ("call_a", "weather", '{"city": "Paris"}'),
        ("call_b", "weather", '{"city": "Rome"}'),
    ]
    assert assembly.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert assembly.usage is not None and assembly.usage.output_tokens == 5
    assert len(assembly.tool_events) == 4


def test_text_only_stream_has_no_tool_calls() -> None:
    assembly = StreamAssembly()
    assembly.add(provider_pb2.StreamCompleteResponse(text="Hi"))
    assembly.add(provider_pb2.StreamCompleteResponse(finish_reason=common_pb2.FINISH_REASON_STOP))
    message = assembly.message()
    assert [p.text for p in message.content] == ["Hi"]
    assert not message.tool_calls
    assert assembly.usage is None
