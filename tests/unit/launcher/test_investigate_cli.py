"""`llmgw investigate` against an httpx.MockTransport that answers as the gateway's REST
API does: SSE framing, resuming a dropped event stream, exit statuses, rendering."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.launcher import cli, investigate_cli
from services.launcher.investigate_client import (
    MAX_RECONNECTS,
    GatewayHTTPError,
    InvestigationClient,
    sse_data,
)

NAME = "investigations/inv-1"


def _event(sequence: int, **event: Any) -> dict[str, Any]:
    return {
        "investigation": NAME,
        "sequence": str(sequence),
        "time": "2026-01-01T00:00:00Z",
        **event,
    }


def _tool_call(call_id: str, tool: str, code: int = 0, message: str = "") -> dict[str, Any]:
    return {
        "id": call_id,
        "toolset": "kubernetes",
        "tool": tool,
        "arguments": {"namespace": "shop", "name": "payments-1"},
        "output": "{}",
        "truncated": False,
        "duration": "0.120s",
        "status": {"code": code, "message": message, "details": []},
        "requested_by": "context",
        "step": 0,
    }


FINDING: dict[str, Any] = {
    "title": "pod payments-1 is crash looping",
    "detail": "restarted 7 times",
    "evidence": [{"tool_call_id": "c1", "excerpt": "CrashLoopBackOff"}],
    "origin": "analyzer:crash_loop",
}
RESULT: dict[str, Any] = {
    "summary": "The payments api exits at start.",
    "root_cause": "PAYMENT_API_KEY is not set.",
    "root_cause_evidence": [
        {"tool_call_id": "c3", "excerpt": "required key PAYMENT_API_KEY is not set"}
    ],
    "findings": [FINDING],
    "recommendations": ["Set PAYMENT_API_KEY."],
    "confidence": 0.72,
    "root_cause_support": "ROOT_CAUSE_SUPPORT_CORROBORATED",
    "root_cause_analyzer": "analyzer:crash_loop",
    "tool_calls": [_tool_call("c1", "kubernetes_describe_pod")],
    "completeness": "COMPLETENESS_COMPLETE",
    "partial_reason": "PARTIAL_REASON_UNSPECIFIED",
    "partial_detail": "",
    "rejected_claims": [{"title": "the disk is full", "reason": "excerpt not found in c2"}],
    "steps": 2,
    "model": "investigator",
}


def _events(final_state: str = "INVESTIGATION_STATE_SUCCEEDED") -> list[dict[str, Any]]:
    return [
        _event(1, state="INVESTIGATION_STATE_RUNNING"),
        _event(2, progress={"stage": "gathering_context", "message": "reading", "percent": 10}),
        _event(3, tool_call=_tool_call("c3", "kubernetes_pod_logs")),
        _event(4, tool_call=_tool_call("c4", "kubernetes_events", 14, "the API is down")),
        _event(5, finding=FINDING),
        _event(6, result=RESULT),
        _event(7, state=final_state),
    ]


def _frames(events: list[dict[str, Any]]) -> list[bytes]:
    return [f"data: {json.dumps({'event': e})}\n\n".encode() for e in events]


class _Dropping(httpx.SyncByteStream):
    """A response body that sends some frames, then loses the connection."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


@dataclass
class FakeGateway:
    """The REST paths of the InvestigationService, one investigation, scripted streams."""

    investigation: dict[str, Any] = field(
        default_factory=lambda: {
            "name": NAME,
            "state": "INVESTIGATION_STATE_SUCCEEDED",
            "result": RESULT,
            "usage": {"total_tokens": 1234},
            "cost": 0.0012,
            "alert": {"alert_name": "KubePodCrashLooping", "namespace": "shop"},
            "create_time": "2026-01-01T00:00:00Z",
        }
    )
    events: list[dict[str, Any]] = field(default_factory=_events)
    # Per stream connection: how many frames it sends before dropping (None: all, then
    # the end of the stream).
    drops: list[int | None] = field(default_factory=list)
    refuse: tuple[int, dict[str, Any]] | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.refuse is not None:
            return httpx.Response(self.refuse[0], json=self.refuse[1])
        path = request.url.path
        if request.method == "POST" and path == "/v1/investigations":
            return httpx.Response(
                200, json={"investigation": {"name": NAME, "state": "INVESTIGATION_STATE_QUEUED"}}
            )
        if path == f"/v1/{NAME}:streamEvents":
            after = int(request.url.params.get("after_sequence", "0"))
            frames = _frames([e for e in self.events if int(e["sequence"]) > after])
            drop = self.drops.pop(0) if self.drops else None
            headers = {"content-type": "text/event-stream"}
            if drop is None:
                return httpx.Response(200, headers=headers, content=b"".join(frames))
            return httpx.Response(200, headers=headers, stream=_Dropping(frames[:drop]))
        if request.method == "GET" and path == f"/v1/{NAME}":
            return httpx.Response(200, json={"investigation": self.investigation})
        if request.method == "GET" and path == "/v1/investigations":
            return httpx.Response(
                200, json={"investigations": [self.investigation], "next_page_token": ""}
            )
        if path == f"/v1/{NAME}:cancel":
            cancelled = {**self.investigation, "state": "INVESTIGATION_STATE_CANCELLED"}
            return httpx.Response(200, json={"investigation": cancelled})
        if path == f"/v1/{NAME}:chat":
            return httpx.Response(
                200, json={"answer": "Because the key is missing.", "session": "sessions/s1"}
            )
        return httpx.Response(404, json={"code": 5, "message": f"no route {path}"})

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def stream_afters(self) -> list[str]:
        return [
            r.url.params["after_sequence"] for r in self.requests if "streamEvents" in r.url.path
        ]


@dataclass
class Run:
    code: int
    out: str
    err: str


def _run(
    gateway: FakeGateway, argv: list[str], monkeypatch: pytest.MonkeyPatch | None = None
) -> Run:
    args = cli._parser().parse_args(["investigate", *argv])
    out, err = io.StringIO(), io.StringIO()
    if monkeypatch is not None:
        # Reconnect pauses are the client's business; here they need not take time.
        monkeypatch.setattr("services.launcher.investigate_client.time.sleep", lambda _: None)
    code = investigate_cli.main(args, transport=httpx.MockTransport(gateway), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def _client(gateway: FakeGateway, sleeps: list[float]) -> InvestigationClient:
    return InvestigationClient(
        "http://gw", transport=httpx.MockTransport(gateway), sleep=sleeps.append
    )


def test_sse_data_joins_data_lines_and_skips_comments() -> None:
    lines = [": keep-alive", "", 'data: {"a":', "data: 1}", "", "event: x", "data:2", ""]
    assert list(sse_data(iter(lines))) == ['{"a":\n1}', "2"]
    assert list(sse_data(iter(["data: last"]))) == ["last"]


def test_follow_resumes_after_a_dropped_connection_without_repeating_events() -> None:
    gateway, sleeps = FakeGateway(drops=[3, 1]), list[float]()
    events = list(_client(gateway, sleeps).follow(NAME))
    assert [int(e["sequence"]) for e in events] == list(range(1, 8))
    assert gateway.stream_afters() == ["0", "3", "4"]
    assert sleeps == [0.5, 0.5]  # progress was made before each drop: no growing pause


def test_follow_resumes_a_stream_that_ended_before_the_final_state() -> None:
    gateway = FakeGateway()
    gateway.events = gateway.events[:4]
    gateway.investigation["state"] = "INVESTIGATION_STATE_RUNNING"
    sleeps: list[float] = []
    client = _client(gateway, sleeps)
    with pytest.raises(GatewayHTTPError, match="lost the event stream of investigations/inv-1"):
        list(client.follow(NAME))
    # Every reconnect asked for what came after the last event seen.
    assert gateway.stream_afters() == ["0"] + ["4"] * MAX_RECONNECTS
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # the pause grows while nothing comes


def test_follow_stops_when_the_stream_ends_and_the_investigation_is_final() -> None:
    gateway = FakeGateway()
    gateway.events = gateway.events[:4]
    events = list(_client(gateway, []).follow(NAME))
    assert len(events) == 4
    assert gateway.paths()[-1] == f"GET /v1/{NAME}"


def test_follow_does_not_retry_a_refusal() -> None:
    gateway = FakeGateway(refuse=(404, {"code": 5, "message": "investigation 'x' not found"}))
    with pytest.raises(GatewayHTTPError, match="HTTP 404: investigation 'x' not found"):
        list(_client(gateway, []).follow(NAME))
    assert len(gateway.requests) == 1


def test_a_status_frame_in_the_stream_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = b'data: {"code": 14, "message": "the investigation store is unavailable"}\n\n'
        return httpx.Response(200, content=body)

    client = InvestigationClient("http://gw", transport=httpx.MockTransport(handler))
    with pytest.raises(GatewayHTTPError, match="the investigation store is unavailable"):
        list(client.follow(NAME))


def test_run_follows_progress_and_prints_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = FakeGateway(drops=[4])
    run = _run(
        gateway,
        [
            "--alert-name", "KubePodCrashLooping", "--namespace", "shop",
            "--label", "pod=payments-1", "--label", "expr=a=b", "--annotation", "summary=down",
            "--toolset", "kubernetes", "--max-steps", "4", "--time-limit", "2m",
            "--max-tokens", "5000", "--model", "investigator", "--url", "http://gw",
        ],
        monkeypatch,
    )  # fmt: skip
    assert run.code == investigate_cli.EXIT_COMPLETE, run.err
    sent = json.loads(gateway.requests[0].content)
    assert sent == {
        "alert": {
            "alert_name": "KubePodCrashLooping",
            "namespace": "shop",
            "labels": {"pod": "payments-1", "expr": "a=b"},
            "annotations": {"summary": "down"},
        },
        "toolsets": ["kubernetes"],
        "model": "investigator",
        "limits": {"max_steps": 4, "time_limit": "120s", "max_tokens": "5000"},
    }
    assert gateway.paths()[-1] == f"GET /v1/{NAME}"
    assert "[c3] kubernetes_pod_logs name=payments-1 namespace=shop ok 120 ms" in run.err
    assert "[c4] kubernetes_events name=payments-1 namespace=shop UNAVAILABLE: the API is down" in (
        run.err
    )
    assert "finding: pod payments-1 is crash looping (analyzer:crash_loop) [c1]" in run.err
    assert "-- gathering_context (10%) reading" in run.err
    assert "state: succeeded" in run.err
    # Nothing printed twice across the reconnect.
    assert run.err.count("[c3]") == 1
    out = run.out
    assert out.startswith(f"{NAME}: succeeded\nCompleteness: complete\n")
    assert (
        'Root cause:\n  PAYMENT_API_KEY is not set.\n    [c3] "required key PAYMENT_API_KEY' in out
    )
    assert '[c1] "CrashLoopBackOff"' in out
    assert "  - Set PAYMENT_API_KEY." in out
    assert "Rejected claims" in out and "the disk is full" in out
    assert "Confidence: 0.72 (the model's root cause, corroborated by the analyzers)" in out
    assert "Model: investigator; 2 steps, 1 tool calls, 1234 tokens" in out


@pytest.mark.parametrize(
    ("state", "result", "code", "shown"),
    [
        (
            "INVESTIGATION_STATE_SUCCEEDED",
            {
                **RESULT,
                "completeness": "COMPLETENESS_PARTIAL",
                "partial_reason": "PARTIAL_REASON_TOKEN_BUDGET",
                "partial_detail": "The token budget (1) was spent.",
            },
            investigate_cli.EXIT_PARTIAL,
            "Completeness: partial (token budget): The token budget (1) was spent.",
        ),
        ("INVESTIGATION_STATE_FAILED", None, investigate_cli.EXIT_FAILED, "Error: boom"),
        ("INVESTIGATION_STATE_CANCELLED", RESULT, investigate_cli.EXIT_FAILED, ": cancelled"),
    ],
)
def test_exit_status_says_how_it_ended(
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    result: dict[str, Any] | None,
    code: int,
    shown: str,
) -> None:
    gateway = FakeGateway(events=_events(state))
    gateway.investigation.update(state=state, result=result, error={"code": 13, "message": "boom"})
    if result is None:
        del gateway.investigation["result"]
    run = _run(gateway, ["--alert-name", "A", "--url", "http://gw"], monkeypatch)
    assert run.code == code
    assert shown in run.out


def test_json_prints_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = FakeGateway()
    run = _run(gateway, ["--alert-name", "A", "--json", "--url", "http://gw"], monkeypatch)
    assert run.code == 0
    assert json.loads(run.out) == gateway.investigation


def test_a_refusal_prints_the_gateways_message_and_exits_2() -> None:
    gateway = FakeGateway(
        refuse=(400, {"code": 3, "message": "investigation.toolsets[0]: unknown toolset 'ssh'"})
    )
    run = _run(gateway, ["--alert-name", "A", "--url", "http://gw"])
    assert run.code == investigate_cli.EXIT_USAGE
    assert run.err == "!! HTTP 400: investigation.toolsets[0]: unknown toolset 'ssh'\n"
    assert run.out == ""


def test_an_unreachable_gateway_exits_2() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    args = cli._parser().parse_args(["investigate", "get", "x", "--url", "http://gw:1"])
    err = io.StringIO()
    code = investigate_cli.main(args, transport=httpx.MockTransport(handler), err=err)
    assert code == 2
    assert "cannot reach the gateway at http://gw:1: Connection refused" in err.getvalue()


def test_no_wait_prints_the_name_only() -> None:
    gateway = FakeGateway()
    run = _run(gateway, ["--alert-name", "A", "--no-wait", "--url", "http://gw"])
    assert (run.code, run.out) == (0, f"{NAME}\n")
    assert gateway.paths() == ["POST /v1/investigations"]


def test_get_list_cancel_and_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGW_API_KEY", "llmgw_k_secret")
    monkeypatch.setenv("LLMGW_URL", "http://from-env")
    gateway = FakeGateway()
    got = _run(gateway, ["get", "inv-1"])
    assert got.code == 0 and got.out.startswith(f"{NAME}: succeeded")
    listed = _run(gateway, ["list", "--state", "running", "--alert-name", "KubePod", "--json"])
    assert json.loads(listed.out)["investigations"][0]["name"] == NAME
    cancelled = _run(gateway, ["cancel", NAME])
    assert cancelled.code == 0 and cancelled.out.startswith(f"{NAME}: cancelled")
    asked = _run(gateway, ["ask", "inv-1", "why?", "--model", "m", "--url", "http://flag"])
    assert asked.out == "Because the key is missing.\n"
    requests = gateway.requests
    assert [f"{r.method} {r.url}" for r in requests] == [
        f"GET http://from-env/v1/{NAME}",
        "GET http://from-env/v1/investigations?state=INVESTIGATION_STATE_RUNNING"
        "&alert_name=KubePod",
        f"POST http://from-env/v1/{NAME}:cancel",
        f"POST http://flag/v1/{NAME}:chat",
    ]
    assert {r.headers["authorization"] for r in requests} == {"Bearer llmgw_k_secret"}
    assert json.loads(requests[-1].content) == {"message": "why?", "model": "m"}


def test_get_follow_prints_progress_until_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = FakeGateway()
    run = _run(gateway, ["get", "inv-1", "--follow", "--url", "http://gw"], monkeypatch)
    assert run.code == 0 and "[c3] kubernetes_pod_logs" in run.err
    assert gateway.paths() == [f"GET /v1/{NAME}:streamEvents", f"GET /v1/{NAME}"]


def test_get_of_a_partial_investigation_exits_3() -> None:
    gateway = FakeGateway()
    gateway.investigation["result"] = {**RESULT, "completeness": "COMPLETENESS_PARTIAL"}
    assert _run(gateway, ["get", "inv-1", "--url", "http://gw"]).code == 3


def test_the_running_stacks_url_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGW_URL", raising=False)
    gateway = FakeGateway()
    args = cli._parser().parse_args(["investigate", "get", "inv-1"])
    investigate_cli.main(
        args,
        running_url="http://127.0.0.1:18080",
        transport=httpx.MockTransport(gateway),
        out=io.StringIO(),
    )
    assert str(gateway.requests[0].url) == f"http://127.0.0.1:18080/v1/{NAME}"


@pytest.mark.parametrize(
    "argv",
    [
        ["investigate", "--alert-name", "A", "--label", "novalue"],
        ["investigate", "--alert-name", "A", "--time-limit", "soon"],
        ["investigate", "--alert-name", "A", "--max-steps", "0"],
        ["investigate", "--alert-name", "A", "--toolset", "ssh"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_an_alert_name_is_needed_to_start_one() -> None:
    args = cli._parser().parse_args(["investigate", "--namespace", "shop"])
    err = io.StringIO()
    assert investigate_cli.main(args, err=err) == 2
    assert "--alert-name is required" in err.getvalue()
