"""Session-aware chat through Envoy: history in, the turn appended atomically on success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from tests.fakes import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration


class Api:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.router = router_service_pb2_grpc.RouterServiceStub(channel)
        self.sessions = session_grpc.SessionServiceStub(channel)

    async def new_session(self, system_prompt: str = "") -> str:
        reply = await self.sessions.CreateSession(
            session_pb2.CreateSessionRequest(
                session=session_pb2.Session(system_prompt=system_prompt)
            ),
            timeout=10,
        )
        return reply.session.name

    async def history(self, name: str) -> list[common_pb2.Message]:
        reply = await self.sessions.GetSession(
            session_pb2.GetSessionRequest(
                name=name, view=session_pb2.SESSION_VIEW_FULL, message_limit=1000
            ),
            timeout=10,
        )
        return [m.message for m in reply.session.messages]


@pytest.fixture
async def api(gw: Gateway) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        yield Api(channel)


def _chat(
    text: str, session: str = "", model: str = "gpt-4o-mini", **gateway: object
) -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))],
        gateway=chat_pb2.GatewayOptions(session=session, **gateway),  # type: ignore[arg-type]
    )


def _summary(messages: list[common_pb2.Message]) -> list[tuple[str, str]]:
    return [
        (
            common_pb2.Role.Name(m.role).removeprefix("ROLE_").lower(),
            "".join(p.text for p in m.content),
        )
        for m in messages
    ]


def _sent_messages(gw: Gateway) -> list[dict[str, object]]:
    with gw.fakes["openai"].control() as control:
        messages: list[dict[str, object]] = control.completions()[-1].json["messages"]
    return messages


async def test_history_is_prepended_and_each_turn_appended(gw: Gateway, api: Api) -> None:
    name = await api.new_session(system_prompt="Be brief.")
    call = api.router.CreateChatCompletion(_chat("Hello", name), timeout=10)
    reply = await call
    trailers = dict(await call.trailing_metadata())
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert trailers["x-llmgw-session-saved"] == "true"
    assert trailers["x-llmgw-history-messages"] == "0"
    assert _sent_messages(gw) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]

    call = api.router.CreateChatCompletion(_chat("Again", name), timeout=10)
    await call
    assert dict(await call.trailing_metadata())["x-llmgw-history-messages"] == "2"
    assert _sent_messages(gw) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": DEFAULT_TEXT},
        {"role": "user", "content": "Again"},
    ]
    assert _summary(await api.history(name)) == [
        ("user", "Hello"),
        ("assistant", DEFAULT_TEXT),
        ("user", "Again"),
        ("assistant", DEFAULT_TEXT),
    ]


async def test_a_streamed_turn_is_appended_once_the_stream_completes(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["Str", "eam", "ed."]))
    text = ""
    async for chunk in api.router.StreamChatCompletion(_chat("Hi", name), timeout=10):
        text += "".join(c.delta.content for c in chunk.choices)
    assert text == "Streamed."
    assert _summary(await api.history(name)) == [("user", "Hi"), ("assistant", "Streamed.")]


async def test_streamed_tool_calls_are_stored_with_the_turn(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    with gw.fakes["openai"].control() as control:
        control.script(
            Behaviour(
                tool_calls=[
                    ToolCallSpec(name="weather", arguments='{"city": "Paris"}', id="c1"),
                    ToolCallSpec(name="weather", arguments='{"city": "Rome"}', id="c2"),
                ]
            )
        )
    request = _chat("Weather?", name)
    request.tools.add(type="function", function=chat_pb2.ChatFunctionDefinition(name="weather"))
    async for _chunk in api.router.StreamChatCompletion(request, timeout=10):
        pass
    stored = await api.history(name)
    assert [(c.id, c.name, c.arguments) for c in stored[-1].tool_calls] == [
        ("c1", "weather", '{"city": "Paris"}'),
        ("c2", "weather", '{"city": "Rome"}'),
    ]


async def test_a_failed_completion_appends_nothing(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    await api.router.CreateChatCompletion(_chat("First", name), timeout=10)
    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(status=400, error_message="bad request"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.router.CreateChatCompletion(_chat("Fails", name), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    with gw.fakes["openai"].control() as control:
        control.script(Behaviour(chunks=["a ", "b ", "c ", "d "], error_after=2))
    text = ""
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        async for chunk in api.router.StreamChatCompletion(_chat("Breaks", name), timeout=10):
            text += "".join(c.delta.content for c in chunk.choices)
    assert broken.value.code() is grpc.StatusCode.UNAVAILABLE
    assert text == "a b "
    assert _summary(await api.history(name)) == [("user", "First"), ("assistant", DEFAULT_TEXT)]


async def test_history_window_sends_only_the_latest_messages(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    for text in ("one", "two", "three"):
        await api.router.CreateChatCompletion(_chat(text, name), timeout=10)
    await api.router.CreateChatCompletion(_chat("four", name, history_window=2), timeout=10)
    assert _sent_messages(gw) == [
        {"role": "user", "content": "three"},
        {"role": "assistant", "content": DEFAULT_TEXT},
        {"role": "user", "content": "four"},
    ]
    assert len(await api.history(name)) == 8


async def test_concurrent_turns_on_one_session_are_each_stored_whole(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    questions = [f"q{i}" for i in range(20)]
    await asyncio.gather(
        *(api.router.CreateChatCompletion(_chat(q, name), timeout=20) for q in questions)
    )
    stored = _summary(await api.history(name))
    assert len(stored) == 40
    # Every user turn is immediately followed by its answer: no turn is interleaved.
    assert [role for role, _ in stored] == ["user", "assistant"] * 20
    assert sorted(text for role, text in stored if role == "user") == sorted(questions)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"session": "nope"}, "gateway.session"),
        ({"session": "sessions/a/b"}, "gateway.session"),
        ({"history_window": 3}, "gateway.history_window"),
        ({"session": "sessions/x", "history_window": -1}, "gateway.history_window"),
    ],
)
async def test_bad_session_options_are_invalid_argument(
    gw: Gateway, options: dict[str, object], field: str
) -> None:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "gateway": options},
        )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    fields = [v["field"] for d in details for v in d.get("field_violations", [])]
    assert fields == [field]


async def test_unknown_session_is_404_and_calls_no_model(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "hi"}],
                "gateway": {"session": "sessions/does-not-exist"},
            },
        )
    assert response.status_code == 404
    assert "sessions/does-not-exist" in response.json()["error"]["message"]
    with gw.fakes["openai"].control() as control:
        assert control.stats().hits == 0


async def test_rest_session_round_trip_reports_the_save(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "gateway": {"session": name}},
        )
    assert response.status_code == 200
    assert response.headers["x-llmgw-session-saved"] == "true"
    assert response.headers["x-llmgw-session"] == name
    assert _summary(await api.history(name)) == [("user", "hi"), ("assistant", DEFAULT_TEXT)]


async def test_a_thousand_concurrent_appends_through_envoy_are_all_kept_in_order(
    api: Api,
) -> None:
    name = await api.new_session()
    writers, each = 20, 50

    async def write(writer: int) -> None:
        for n in range(each):
            text = f"{writer}:{n}"
            await api.sessions.AppendMessages(
                session_pb2.AppendMessagesRequest(
                    session=name,
                    messages=[
                        common_pb2.Message(
                            role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)]
                        )
                    ],
                ),
                timeout=30,
            )

    await asyncio.gather(*(write(w) for w in range(writers)))
    stored = [text for _, text in _summary(await api.history(name))]
    assert len(stored) == writers * each
    order: dict[int, list[int]] = {}
    for text in stored:
        writer, n = map(int, text.split(":"))
        order.setdefault(writer, []).append(n)
    assert order == {w: list(range(each)) for w in range(writers)}


async def test_a_full_session_is_refused_before_any_model_call(gw: Gateway, api: Api) -> None:
    name = await api.new_session()
    filler = common_pb2.Message(
        role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="x")]
    )
    limit = 10_000  # the shared gateway's sessions.max_messages (the default)
    for _ in range(limit // 1000):
        await api.sessions.AppendMessages(
            session_pb2.AppendMessagesRequest(session=name, messages=[filler] * 1000),
            timeout=30,
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.router.CreateChatCompletion(_chat("one more", name), timeout=10)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert name in (caught.value.details() or "")
    with gw.fakes["openai"].control() as control:
        assert control.stats().hits == 0


async def test_a_history_larger_than_a_grpc_message_still_chats(gw: Gateway, api: Api) -> None:
    """40 messages of about 1 MB: 40 MB of history, past the 32 MiB a gRPC message may
    carry. The session service answers the router with the newest messages that fit its
    bound, and the chat goes on."""
    name = await api.new_session()
    big = "x" * 1_000_000
    for i in range(40):
        await api.sessions.AppendMessages(
            session_pb2.AppendMessagesRequest(
                session=name,
                messages=[
                    common_pb2.Message(
                        role=common_pb2.ROLE_USER if i % 2 == 0 else common_pb2.ROLE_ASSISTANT,
                        content=[common_pb2.ContentPart(text=f"{i} {big}")],
                    )
                ],
            ),
            timeout=30,
        )
    reply = await api.router.CreateChatCompletion(_chat("and now?", session=name), timeout=60)
    assert reply.choices[0].message.content == DEFAULT_TEXT
    sent = _sent_messages(gw)
    # The newest history, then the new turn; the oldest messages stayed in the session.
    assert sent[-1] == {"role": "user", "content": "and now?"}
    kept = [str(m["content"]).split(" ", 1)[0] for m in sent[:-1]]
    assert kept and kept[-1] == "39" and "0" not in kept
    assert 8 <= len(kept) <= 17
    got = await api.sessions.GetSession(
        session_pb2.GetSessionRequest(
            name=name, view=session_pb2.SESSION_VIEW_FULL, message_bytes_limit=3_000_000
        ),
        timeout=30,
    )
    assert got.session.message_count == 42
    # The newest that fit 3 MB: the turn just appended and two of the large messages.
    assert len(got.session.messages) == 4
