"""The native answer -> OpenAI's `response` object, checked against the SDK's model."""

from __future__ import annotations

from collections.abc import Sequence

from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from llmgw.router.v1 import chat_pb2
from services.router.compat.responses_reply import assistant_message, from_completion
from services.router.compat.responses_request import to_chat_request

ECHO = to_chat_request({"model": "m", "input": "x"}).echo


def _completion(
    content: str | None, calls: Sequence[tuple[str, str, str]] = (), finish: str = "stop"
) -> chat_pb2.CreateChatCompletionResponse:
    message = chat_pb2.ChatCompletionMessage(role="assistant")
    if content is not None:
        message.content = content
    for call_id, name, arguments in calls:
        message.tool_calls.append(
            chat_pb2.ChatToolCall(
                id=call_id,
                type="function",
                function=chat_pb2.ChatFunctionCall(name=name, arguments=arguments),
            )
        )
    return chat_pb2.CreateChatCompletionResponse(
        id="chatcmpl-1",
        model="gpt-4o-mini",
        choices=[chat_pb2.ChatCompletionChoice(message=message, finish_reason=finish)],
        usage=chat_pb2.CompletionUsage(
            prompt_tokens=10,
            completion_tokens=4,
            total_tokens=14,
            prompt_tokens_details=chat_pb2.PromptTokensDetails(cached_tokens=3),
        ),
    )


def test_text_answer_parses_as_the_sdk_response() -> None:
    body = from_completion(_completion("Hello"), "resp_" + "a" * 32, ECHO)
    assert "output_text" not in body  # the SDK's own property
    response = Response.model_validate(body)
    assert response.id == "resp_" + "a" * 32
    assert response.status == "completed"
    assert response.output_text == "Hello"
    [item] = response.output
    assert isinstance(item, ResponseOutputMessage) and item.id.startswith("msg_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 4)
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert response.usage.total_tokens == 14
    assert response.tool_choice == "auto" and response.parallel_tool_calls is True


def test_tool_calls_become_function_call_items() -> None:
    body = from_completion(
        _completion(None, [("c1", "f", '{"a":1}'), ("c2", "g", "")], "tool_calls"), "resp_x", ECHO
    )
    response = Response.model_validate(body)
    items = [i for i in response.output if isinstance(i, ResponseFunctionToolCall)]
    assert len(items) == len(response.output)
    calls = [(i.type, i.call_id, i.name, i.arguments) for i in items]
    assert calls == [
        ("function_call", "c1", "f", '{"a":1}'),
        ("function_call", "c2", "g", "{}"),
    ]
    assert all(i.id is not None and i.id.startswith("fc_") for i in items)


def test_length_is_incomplete_with_max_output_tokens() -> None:
    response = Response.model_validate(
        from_completion(_completion("cut", finish="length"), "resp_x", ECHO)
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_the_answer_as_the_next_turns_assistant_message() -> None:
    body = from_completion(_completion("Let me check", [("c1", "f", "{}")]), "resp_x", ECHO)
    message = assistant_message(body["output"])
    assert message.role == "assistant"
    assert message.content.string_value == "Let me check"
    assert [(c.id, c.function.name) for c in message.tool_calls] == [("c1", "f")]


def test_a_refusal_is_a_refusal_part() -> None:
    completion = _completion(None)
    completion.choices[0].message.refusal = "I can't help with that."
    response = Response.model_validate(from_completion(completion, "resp_x", ECHO))
    [item] = response.output
    assert isinstance(item, ResponseOutputMessage)
    assert item.content[0].type == "refusal"
    assert assistant_message(
        from_completion(completion, "resp_x", ECHO)["output"]
    ).content.string_value == ("I can't help with that.")
