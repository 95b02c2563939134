"""Reading Server-Sent Events as a client does, with arrival times."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    data: dict[str, Any]
    at: float  # seconds since the request was sent


async def read_events(response: httpx.Response, started: float) -> list[Event]:
    """Every `data:` event of an SSE response, decoded, with when it arrived."""
    events: list[Event] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload and payload != "[DONE]":
                events.append(Event(json.loads(payload), time.perf_counter() - started))
    return events


def content_of(events: list[Event]) -> str:
    return "".join(
        choice["delta"].get("content", "")
        for event in events
        for choice in event.data.get("choices", [])
    )
