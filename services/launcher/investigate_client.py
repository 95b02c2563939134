"""The REST side of `llmgw investigate`: investigations over the gateway's public API.

Plain httpx against the transcoded REST paths (`/v1/investigations...`), as any client
would call them; events come as Server-Sent Events (`data: {"event": {...}}`, one per
frame). An investigation may run longer than one connection lives (Envoy's deadlines, a
proxy, a network blip), so `follow` reconnects with `after_sequence` = the last event
seen and hands every event over exactly once, until the one that moves the
investigation to a final state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

# The states after which an investigation's event stream ends.
FINAL_STATES = frozenset(
    {
        "INVESTIGATION_STATE_SUCCEEDED",
        "INVESTIGATION_STATE_FAILED",
        "INVESTIGATION_STATE_CANCELLED",
    }
)
# Reconnects in a row that brought no new event before `follow` gives up.
MAX_RECONNECTS = 5
# Longest error text quoted from a gateway answer that is not its JSON error body.
MAX_QUOTED = 300

Json = dict[str, Any]


class GatewayHTTPError(Exception):
    """The gateway refused a request or could not be reached; `str()` says why, in the
    gateway's own words when it gave any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def error_message(response: httpx.Response) -> str:
    """The gateway's message for a refused request: the JSON `google.rpc.Status`
    Envoy's transcoder sends (`{"code", "message", "details"}`), the OpenAI envelope,
    or the start of whatever body came back."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            body = body["error"]
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    text = response.content.decode("utf-8", "replace").strip()
    return text[:MAX_QUOTED] or response.reason_phrase or "no message"


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise GatewayHTTPError(
            f"HTTP {response.status_code}: {error_message(response)}", response.status_code
        )


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each Server-Sent Event (its `data:` lines joined), in order."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


def _event_of(data: str) -> Json | None:
    """The investigation event a frame carries; a frame holding a status instead (a
    stream that failed once started) raises it."""
    try:
        frame = json.loads(data)
    except ValueError as error:
        raise GatewayHTTPError(f"the event stream sent a frame that is not JSON: {error}") from None
    if not isinstance(frame, dict):
        return None
    event = frame.get("event")
    if isinstance(event, dict):
        return event
    failure = frame.get("error", frame)
    if isinstance(failure, dict) and isinstance(failure.get("message"), str):
        raise GatewayHTTPError(f"the event stream failed: {failure['message']}")
    return None


class InvestigationClient:
    """Investigations of one gateway, as one API key's owner sees them."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        stream_read_timeout: float = 300.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._sleep = sleep or time.sleep
        self.base_url = base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InvestigationClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, *, body: Json | None = None, params: Json | None = None
    ) -> Json:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as error:
            raise GatewayHTTPError(
                f"cannot reach the gateway at {self.base_url}: {error}"
            ) from None
        _check(response)
        try:
            answer = response.json()
        except ValueError:
            raise GatewayHTTPError(
                f"the gateway answered {path} with something that is not JSON"
            ) from None
        if not isinstance(answer, dict):
            raise GatewayHTTPError(f"the gateway answered {path} with a non-object")
        return answer

    def create(self, investigation: Json, investigation_id: str = "") -> Json:
        """CreateInvestigation: the investigation, QUEUED."""
        params = {"investigation_id": investigation_id} if investigation_id else None
        answer = self._call("POST", "/v1/investigations", body=investigation, params=params)
        return dict(answer["investigation"])

    def get(self, name: str) -> Json:
        return dict(self._call("GET", f"/v1/{name}")["investigation"])

    def list(
        self, *, page_size: int = 0, state: str = "", alert_name: str = "", page_token: str = ""
    ) -> Json:
        """ListInvestigations: `{"investigations": [...], "next_page_token"}`."""
        params = {
            key: value
            for key, value in (
                ("page_size", page_size),
                ("state", state),
                ("alert_name", alert_name),
                ("page_token", page_token),
            )
            if value
        }
        return self._call("GET", "/v1/investigations", params=params)

    def cancel(self, name: str) -> Json:
        return dict(self._call("POST", f"/v1/{name}:cancel", body={})["investigation"])

    def chat(self, name: str, message: str, model: str = "") -> Json:
        """ChatInvestigation: `{"answer", "usage", "session"}`."""
        body: Json = {"message": message}
        if model:
            body["model"] = model
        return self._call("POST", f"/v1/{name}:chat", body=body)

    def _stream_once(self, name: str, after: int) -> Iterator[Json]:
        with self._http.stream(
            "GET",
            f"/v1/{name}:streamEvents",
            params={"after_sequence": after},
            timeout=self._stream_timeout,
        ) as response:
            if response.status_code >= 400:
                response.read()
                _check(response)
            for data in sse_data(response.iter_lines()):
                event = _event_of(data)
                if event is not None:
                    yield event

    def follow(self, name: str, after: int = 0) -> Iterator[Json]:
        """Every event of `name` after sequence `after`, once each and in order, until
        the one to a final state (or a stream that ends while the stored investigation
        is final); reconnects (with a growing pause) when the stream breaks or ends
        early, and gives up after MAX_RECONNECTS in a row without news."""
        last, failures = after, 0
        while True:
            progressed = False
            problem = "the stream ended before the investigation did"
            try:
                for event in self._stream_once(name, last):
                    sequence = int(event.get("sequence", 0))
                    if sequence <= last:
                        continue
                    last, progressed = sequence, True
                    yield event
                    if event.get("state") in FINAL_STATES:
                        return
                # Ended without the final event: it may have expired meanwhile, or the
                # gateway cut the stream; the stored state says which.
                if self.get(name).get("state") in FINAL_STATES:
                    return
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            except GatewayHTTPError as error:
                # A refusal (404, 401...) will not change on a retry; an overloaded or
                # restarting gateway (5xx) may.
                if error.status is None or error.status < 500:
                    raise
                problem = str(error)
            failures = 0 if progressed else failures + 1
            if failures >= MAX_RECONNECTS:
                raise GatewayHTTPError(
                    f"lost the event stream of {name} ({problem}); "
                    f"`llmgw investigate get {name}` shows where it is"
                )
            self._sleep(min(0.5 * 2**failures, 8.0))
