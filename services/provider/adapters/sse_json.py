"""`complete` and `stream` for the families that answer JSON, and SSE when streaming.

OpenAI-compatible and Anthropic adapters differ in how they send a request and parse its
answer, not in what they do with it: that part lives here once.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.gateway_config import ProviderConfig
from services.provider.adapters.aiohttp_transport import Reply
from services.provider.adapters.framing import sse_batches
from services.provider.adapters.stream_relay import Translator, relay
from services.provider.adapters.upstream_errors import malformed

SseEvent = tuple[str, bytes]


class SseJsonAdapter(abc.ABC):
    """Sends with `_post`, parses with the family's `_completion` and `_translator`."""

    _name: str
    _config: ProviderConfig

    @abc.abstractmethod
    async def _post(
        self, request: provider_pb2.CompleteRequest, timeout: float | None, *, stream: bool
    ) -> Reply:
        """The provider's response (body unread when streaming); errors already mapped."""

    @abc.abstractmethod
    def _completion(self, body: Any, model: str) -> provider_pb2.CompleteResponse:
        """A unary answer's JSON body, normalised."""

    @abc.abstractmethod
    def _translator(self, model: str) -> Translator[SseEvent]:
        """Fresh stream state for one streamed answer."""

    async def complete(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> provider_pb2.CompleteResponse:
        response = await self._post(request, timeout, stream=False)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        return self._completion(body, request.model)

    async def stream(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        response = await self._post(request, timeout, stream=True)
        frames = sse_batches(response.aiter_bytes(), self._config.max_event_bytes)
        translator = self._translator(request.model)
        relayed = relay(response, frames, translator, self._name, self._config.stream_idle_timeout)
        async with aclosing(relayed) as events:
            async for event in events:
                yield event
