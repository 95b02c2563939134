"""Anthropic's Messages API through the official SDK's client.

As for OpenAI, messages are POSTed with the request the SDK's client builds once
(`sdk_post.py`): its transport, authentication, `anthropic-version` header and error
classes, without its per-call request building or pydantic models of request and
answer. Model listing (rare) goes through the SDK's `get`. The SDK's OpenTelemetry
spans are switched off: the gateway measures upstream latency itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anthropic
import httpx2
import orjson
from anthropic._models import FinalRequestOptions

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.gateway_config import ProviderConfig
from services.provider.adapters.aiohttp_transport import Reply
from services.provider.adapters.anthropic_errors import CAUGHT, from_exception
from services.provider.adapters.anthropic_request import build_body
from services.provider.adapters.anthropic_response import StreamTranslator, completion
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.embeddings import no_embeddings_api
from services.provider.adapters.endpoints import (
    NO_KEY,
    public_url,
    resolve_base_url,
    resolve_credential,
    same_host,
)
from services.provider.adapters.http_client import default_timeout, http_client, request_timeout
from services.provider.adapters.sdk_post import JsonPoster
from services.provider.adapters.sse_json import SseJsonAdapter
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from services.provider.adapters.upstream_errors import malformed

ANTHROPIC_URL = "https://api.anthropic.com"
# Largest page of the model list.
_MODELS_PAGE = 1000


class AnthropicAdapter(SseJsonAdapter):
    def __init__(
        self,
        info: provider_pb2.ProviderInfo,
        config: ProviderConfig,
        client: anthropic.AsyncAnthropic,
    ) -> None:
        self._info = info
        self._name = info.name
        self._config = config
        self._client = client
        self._poster = JsonPoster(client, FinalRequestOptions)

    @property
    def info(self) -> provider_pb2.ProviderInfo:
        return self._info

    async def _post(
        self, request: provider_pb2.CompleteRequest, timeout: float | None, *, stream: bool
    ) -> Reply:
        body = build_body(
            request, stream=stream, default_max_tokens=self._config.default_max_tokens
        )
        try:
            return await self._poster.post(
                "/v1/messages",
                orjson.dumps(body),
                request_timeout(self._config, timeout),
                stream=stream,
            )
        except CAUGHT as error:
            raise from_exception(error, provider=self._name, model=request.model) from None

    def _completion(self, body: Any, model: str) -> provider_pb2.CompleteResponse:
        return completion(body, provider=self._name, model=model)

    def _translator(self, model: str) -> StreamTranslator:
        return StreamTranslator(self._name, model)

    async def embed(
        self, request: provider_pb2.EmbedRequest, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        raise no_embeddings_api(self._name, "anthropic")

    async def _models_page(self, timeout: float | None, after: str | None, limit: int) -> Any:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after_id"] = after
        try:
            response = await self._client.get(
                "/v1/models",
                cast_to=httpx2.Response,
                options={"timeout": request_timeout(self._config, timeout), "params": params},
            )
        except CAUGHT as error:
            raise from_exception(error, provider=self._name, model="") from None
        try:
            page = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        if not isinstance(page, dict):
            raise malformed(self._name, "the model list is not a JSON object")
        return page

    async def list_models(self, timeout: float | None) -> list[provider_pb2.ProviderModel]:
        models: list[provider_pb2.ProviderModel] = []
        after: str | None = None
        while True:
            page = await self._models_page(timeout, after, _MODELS_PAGE)
            for entry in page.get("data") or ():
                model = provider_pb2.ProviderModel(
                    id=entry.get("id") or "",
                    owned_by="anthropic",
                    display_name=entry.get("display_name") or "",
                )
                created = entry.get("created_at")
                if isinstance(created, str):
                    try:
                        when = datetime.fromisoformat(created)
                    except ValueError:
                        when = None
                    if when is not None:
                        model.create_time.FromDatetime(when)
                models.append(model)
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                return models

    async def check(self, timeout: float | None) -> None:
        await self._models_page(timeout, None, 1)

    async def close(self) -> None:
        await self._client.close()


def build_anthropic(
    name: str, config: ProviderConfig, environ: Mapping[str, str]
) -> ProviderAdapter:
    """Anthropic, or a server speaking its Messages API (a proxy, llama.cpp). Only
    Anthropic's own endpoint requires a key."""
    base_url = resolve_base_url(
        name, config, environ, standard_variable="ANTHROPIC_BASE_URL", default=ANTHROPIC_URL
    )
    official = same_host(base_url, ANTHROPIC_URL)
    credential = resolve_credential(config, environ, "ANTHROPIC_API_KEY", official=official)
    info = provider_pb2.ProviderInfo(
        name=name,
        type=provider_pb2.PROVIDER_TYPE_ANTHROPIC,
        base_url=public_url(base_url),
        has_credentials=credential.value is not None,
    )
    if credential.value is None and official:
        return UnconfiguredAdapter(info, credential.variable)
    client = anthropic.AsyncAnthropic(
        api_key=credential.value or NO_KEY,
        base_url=base_url,
        max_retries=0,
        timeout=default_timeout(config),
        default_headers=config.headers or None,
        http_client=http_client(config),
        open_telemetry=False,
    )
    return AnthropicAdapter(info, config, client)
