"""Every example in the README, run as written against a running stack.

The README addresses the default public listener (`localhost:8080`); the test stack
listens on a free port, so that one address is substituted. Nothing else is changed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import Gateway

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```", re.S
)


def examples(repo_root: Path) -> dict[str, tuple[str, str]]:
    text = (repo_root / "README.md").read_text()
    return {m["name"]: (m["lang"], m["code"]) for m in EXAMPLE.finditer(text)}


def run_example(repo_root: Path, gw: Gateway, name: str) -> str:
    lang, code = examples(repo_root)[name]
    code = code.replace("localhost:8080", gw.grpc_target)
    command = (
        [sys.executable, "-c", code]
        if lang == "python"
        else ["bash", "-euo", "pipefail", "-c", code]
    )
    result = subprocess.run(
        command, cwd=repo_root, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_every_example_is_covered(repo_root: Path) -> None:
    assert set(examples(repo_root)) == {
        "curl-unary",
        "curl-stream",
        "curl-models",
        "curl-session",
        "curl-session-chat",
        "curl-tool-loop",
        "curl-idempotent",
        "curl-usage",
        "grpcurl",
        "openai-sdk",
        "curl-embeddings",
        "openai-sdk-embeddings",
        "curl-anthropic",
        "anthropic-sdk",
        "curl-responses",
        "openai-responses",
        "curl-investigation",
        "curl-alertmanager-webhook",
    }


def test_curl_unary(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-unary"))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].strip()


def test_curl_stream(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "curl-stream")
    events = [json.loads(line[5:]) for line in out.splitlines() if line.startswith("data:")]
    assert len(events) > 2
    assert events[-1]["usage"]["completion_tokens"] > 0
    assert all(e["object"] == "chat.completion.chunk" for e in events)


def test_curl_models(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-models"))
    assert "smollm2-135m-instruct" in [m["id"] for m in body["data"]]


def test_curl_session(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-session"))
    assert body["session"]["name"].startswith("sessions/")
    assert body["session"]["system_prompt"] == "You are terse."


def _documents(text: str) -> list[object]:
    """Consecutive JSON documents, as several curl calls print them."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_curl_session_chat(repo_root: Path, local_gateway: Gateway) -> None:
    completion, listing = _documents(run_example(repo_root, local_gateway, "curl-session-chat"))
    assert isinstance(completion, dict) and isinstance(listing, dict)
    answer = completion["choices"][0]["message"]["content"]
    stored = [(m["message"]["role"], m["message"]["content"]) for m in listing["messages"]]
    assert [role for role, _ in stored] == ["ROLE_USER", "ROLE_ASSISTANT"]
    assert stored[0][1] == [{"text": "My name is Ada."}]
    assert "".join(part["text"] for part in stored[1][1]) == answer


def test_curl_tool_loop(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-tool-loop"))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] in ("stop", "length", "max_iterations")
    assert body["usage"]["completion_tokens"] > 0


def test_curl_idempotent(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "curl-idempotent")
    ids = [line for line in out.splitlines() if line.startswith('"id"')]
    # The second answer is the first one replayed: the same completion, marked once.
    assert out.lower().count("x-llmgw-idempotent-replay: true") == 1
    assert len(ids) == 2 and ids[0] == ids[1]


def test_curl_usage(repo_root: Path, local_gateway: Gateway) -> None:
    chat = httpx.post(
        local_gateway.public_url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert chat.status_code == 200
    body = json.loads(run_example(repo_root, local_gateway, "curl-usage"))
    assert int(body["totals"]["requests"]) >= 1
    assert body["totals"]["currency"] == "USD"
    assert body["by_model"]


def test_grpcurl(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "grpcurl")
    assert "llmgw.router.v1.RouterService" in out
    assert '"chat.completion"' in out


def test_openai_sdk(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "openai-sdk")
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 2  # the unary answer, then the streamed one


def test_curl_embeddings(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-embeddings"))
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == len(body["data"][1]["embedding"]) > 0
    assert body["usage"]["prompt_tokens"] > 0


def test_openai_sdk_embeddings(repo_root: Path, local_gateway: Gateway) -> None:
    count, length, tokens = map(
        int, run_example(repo_root, local_gateway, "openai-sdk-embeddings").split()
    )
    assert count == 2 and length > 0 and tokens > 0


def test_curl_anthropic(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-anthropic"))
    assert (body["type"], body["role"]) == ("message", "assistant")
    assert body["content"][0]["type"] == "text"
    assert body["stop_reason"] in ("end_turn", "max_tokens")
    assert body["usage"]["output_tokens"] > 0


def test_anthropic_sdk(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "anthropic-sdk")
    lines = [line for line in out.splitlines() if line.strip()]
    # The unary answer, the streamed one, then the prompt's token count.
    assert len(lines) >= 3
    assert int(lines[-1]) > 0


def test_curl_responses(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-responses"))
    assert body["object"] == "response"
    assert body["id"].startswith("resp_")
    assert body["status"] in ("completed", "incomplete")
    assert body["output"][0]["type"] == "message"
    assert body["usage"]["output_tokens"] > 0


def test_openai_responses(repo_root: Path, local_gateway: Gateway) -> None:
    out = run_example(repo_root, local_gateway, "openai-responses")
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 2  # the first answer, then the continued one


def _cancel(gw: Gateway, name: str) -> None:
    """Ends an example's investigation: the local model has better things to do."""
    httpx.post(f"{gw.public_url}/v1/{name}:cancel", json={}, timeout=30)


def test_curl_investigation(repo_root: Path, local_gateway: Gateway) -> None:
    got, listing = _documents(run_example(repo_root, local_gateway, "curl-investigation"))
    assert isinstance(got, dict) and isinstance(listing, dict)
    investigation = got["investigation"]
    name = investigation["name"]
    try:
        assert name.startswith("investigations/")
        assert investigation["alert"]["alert_name"] == "KubePodCrashLooping"
        assert investigation["alert"]["priority"] == "PRIORITY_CRITICAL"
        assert investigation["limits"]["max_steps"] == 4
        assert name in [i["name"] for i in listing["investigations"]]
    finally:
        _cancel(local_gateway, name)


def test_curl_alertmanager_webhook(repo_root: Path, local_gateway: Gateway) -> None:
    body = json.loads(run_example(repo_root, local_gateway, "curl-alertmanager-webhook"))
    (result,) = body["results"]
    assert result["fingerprint"] == "5e1f2a3b4c5d6e7f"
    assert result["outcome"] in ("WEBHOOK_OUTCOME_OPENED", "WEBHOOK_OUTCOME_DEDUPLICATED")
    assert result["investigation"].startswith("investigations/")
    _cancel(local_gateway, result["investigation"])
