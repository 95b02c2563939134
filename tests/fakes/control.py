"""Clients for the `/_fake/*` control endpoints of a fake running in another process.

Either client takes any URL of the fake (its base URL or its root); only the scheme,
host and port are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from tests.fakes.behaviour import Behaviour
from tests.fakes.control_routes import PREFIX
from tests.fakes.state import FakeStats, RecordedRequest


def control_base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{PREFIX}"


def conversation_body(model: str, turns: Sequence[Behaviour]) -> dict[str, Any]:
    return {"model": model, "turns": [turn.to_dict() for turn in turns]}


def default_body(behaviours: tuple[Behaviour, ...], model: str | None) -> dict[str, Any]:
    return {"behaviours": [b.to_dict() for b in behaviours], "model": model}


class ControlClient:
    """What every fake's blocking control client shares: the connection, reset, the
    recorded requests; usable as a context manager to close its connection pool."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._http = httpx.Client(base_url=control_base(url), timeout=timeout)

    def _stats_json(self) -> Any:
        response = self._http.get("/stats")
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._http.post("/reset").raise_for_status()

    def requests(self) -> list[RecordedRequest]:
        response = self._http.get("/requests")
        response.raise_for_status()
        return [RecordedRequest.from_dict(item) for item in response.json()]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FakeControl(ControlClient):
    """Blocking client of a provider fake."""

    def script(self, *behaviours: Behaviour) -> None:
        self._http.post("/script", json=[b.to_dict() for b in behaviours]).raise_for_status()

    def set_default(self, *behaviours: Behaviour, model: str | None = None) -> None:
        """As `FakeServer.set_default`."""
        self._http.post("/default", json=default_body(behaviours, model)).raise_for_status()

    def set_conversation(self, model: str, turns: Sequence[Behaviour]) -> None:
        """As `FakeServer.set_conversation`."""
        body = conversation_body(model, turns)
        self._http.post("/conversation", json=body).raise_for_status()

    def completions(self) -> list[RecordedRequest]:
        """The completion and embedding requests (POST): the gateway's health checks also
        list models."""
        return [r for r in self.requests() if r.method == "POST"]

    def stats(self) -> FakeStats:
        return FakeStats.from_dict(self._stats_json())


class AsyncControlClient:
    """The asynchronous counterpart of ControlClient; usable as an async context manager."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._http = httpx.AsyncClient(base_url=control_base(url), timeout=timeout)

    async def _stats_json(self) -> Any:
        response = await self._http.get("/stats")
        response.raise_for_status()
        return response.json()

    async def reset(self) -> None:
        (await self._http.post("/reset")).raise_for_status()

    async def requests(self) -> list[RecordedRequest]:
        response = await self._http.get("/requests")
        response.raise_for_status()
        return [RecordedRequest.from_dict(item) for item in response.json()]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncFakeControl(AsyncControlClient):
    """Asynchronous client of a provider fake."""

    async def script(self, *behaviours: Behaviour) -> None:
        response = await self._http.post("/script", json=[b.to_dict() for b in behaviours])
        response.raise_for_status()

    async def set_default(self, *behaviours: Behaviour, model: str | None = None) -> None:
        """As `FakeServer.set_default`."""
        response = await self._http.post("/default", json=default_body(behaviours, model))
        response.raise_for_status()

    async def set_conversation(self, model: str, turns: Sequence[Behaviour]) -> None:
        """As `FakeServer.set_conversation`."""
        body = conversation_body(model, turns)
        response = await self._http.post("/conversation", json=body)
        response.raise_for_status()

    async def stats(self) -> FakeStats:
        return FakeStats.from_dict(await self._stats_json())
