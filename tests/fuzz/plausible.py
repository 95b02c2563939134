"""Requests shaped like the ones callers really send, with hostile values inside: they
pass the first checks and reach the translation, routing, tool and session code that
random messages rarely get to. Each is a JSON object (the REST body, or parsed into the
gRPC request)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fuzz.strategies import deep_json, floats, json_values, texts

MODELS = [
    "gpt-4o-mini",
    "fast",
    "claude-sonnet",
    "llama",
    "cached-mini",
    "",
    "gpt-other",
    "claude-other",
    "ollama/other",
]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _content() -> st.SearchStrategy[Any]:
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": texts()}),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": texts()})}
        ),
        json_values(),
    )
    return st.one_of(texts(), st.lists(part, max_size=3), st.none(), json_values())


def _tool_call() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "id": texts(),
            "type": st.sampled_from(["function", "x"]),
            "function": st.fixed_dictionaries({"name": texts(), "arguments": texts()}),
        }
    )


def _message() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "role": st.one_of(
                st.sampled_from(["user", "assistant", "system", "developer", "tool"]), texts()
            ),
            "content": _content(),
        },
        optional={
            "tool_calls": st.lists(_tool_call(), max_size=3),
            "tool_call_id": texts(),
            "name": texts(),
        },
    )


def _tool() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["function", "function", "other"]),
            "function": st.fixed_dictionaries(
                {"name": texts()},
                optional={
                    "description": texts(),
                    "parameters": st.one_of(json_values(), deep_json()),
                    "strict": st.booleans(),
                },
            ),
        }
    )


def chat() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "model": st.one_of(st.sampled_from(MODELS), texts()),
            "messages": st.lists(_message(), min_size=1, max_size=4),
        },
        optional={
            "temperature": floats(),
            "top_p": floats(),
            "n": st.integers(-5, 5),
            "max_tokens": st.integers(-(2**31), 2**31 - 1),
            "max_completion_tokens": st.integers(-10, 10**7),
            "presence_penalty": floats(),
            "seed": st.integers(-(2**63), 2**63 - 1),
            "user": texts(),
            "stop": st.one_of(texts(), st.lists(texts(), max_size=6), json_values()),
            "tools": st.lists(_tool(), max_size=3),
            "tool_choice": st.one_of(
                st.sampled_from(["auto", "none", "required"]),
                st.fixed_dictionaries(
                    {
                        "type": st.just("function"),
                        "function": st.fixed_dictionaries({"name": texts()}),
                    }
                ),
                json_values(),
            ),
            "parallel_tool_calls": st.booleans(),
            "response_format": st.fixed_dictionaries(
                {
                    "type": st.one_of(
                        st.sampled_from(["text", "json_object", "json_schema"]), texts()
                    )
                },
                optional={
                    "json_schema": st.fixed_dictionaries(
                        {"name": texts()},
                        optional={"schema": st.one_of(json_values(), deep_json())},
                    )
                },
            ),
            "logit_bias": st.dictionaries(texts(), floats(), max_size=3),
            "metadata": st.dictionaries(texts(), texts(), max_size=3),
            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
            "gateway": st.fixed_dictionaries(
                {},
                optional={
                    "session": st.one_of(st.sampled_from(["sessions/nope", "sessions/"]), texts()),
                    "routing_strategy": st.one_of(
                        st.sampled_from(["priority", "weighted", "least_latency"]), texts()
                    ),
                    "disable_fallbacks": st.booleans(),
                    "cache": st.one_of(st.sampled_from(["default", "bypass", "refresh"]), texts()),
                    "tools": st.lists(
                        st.one_of(st.sampled_from(["weather", "search_corpus"]), texts()),
                        max_size=3,
                    ),
                    "max_iterations": st.integers(-3, 30),
                    "history_window": st.integers(-3, 2000),
                    "request_id": texts(),
                },
            ),
        },
    )


def create_session() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "session": st.fixed_dictionaries(
                {},
                optional={
                    "system_prompt": texts(),
                    "context": st.dictionaries(texts(), st.one_of(json_values(), deep_json())),
                    "labels": st.dictionaries(texts(), texts(), max_size=5),
                    "ttl": st.one_of(st.sampled_from(["1s", "0s", "-5s", "99999999999s"]), texts()),
                },
            )
        },
        optional={"session_id": texts(), "request_id": texts()},
    )


def execute_tool() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.one_of(
                st.sampled_from(["tools/weather", "tools/search_corpus", "tools/get_chunk"]),
                texts(),
            ),
            "arguments": st.one_of(
                st.fixed_dictionaries({"city": texts()}),
                st.fixed_dictionaries({"query": texts(), "top_k": st.integers(-5, 10**6)}),
                st.dictionaries(texts(), st.one_of(json_values(), deep_json()), max_size=3),
            ),
        },
        optional={"timeout": st.sampled_from(["0.5s", "0s", "-1s", "1000000s"])},
    )


# Request message full name -> a strategy of its JSON.
PLAUSIBLE = {
    "llmgw.router.v1.CreateChatCompletionRequest": chat(),
    "llmgw.session.v1.CreateSessionRequest": create_session(),
    "llmgw.tool.v1.ExecuteToolRequest": execute_tool(),
}
