"""OpenAI Chat Completions and Embeddings: OpenAI itself, Azure OpenAI and
OpenAI-compatible servers.

Completions and embeddings are POSTed with the request the official SDK's client builds
(`sdk_post.py`): the SDK still provides the transport, authentication (Bearer, or
Azure's `api-key` and `api-version`), its headers and its error classes, but request
and answer skip its parameter transformation, its per-call request building and its
pydantic models, and are encoded and decoded with orjson. Measured on a warm client
against the fake provider, `post(..., cast_to=httpx2.Response)` cost about a third of
the client CPU of `create()`; posting the SDK's prebuilt request costs about half of
that again. Model listing (rare) still goes through the SDK's `get`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx2
import openai
import orjson
from openai._models import FinalRequestOptions

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.gateway_config import ConfigError, ProviderConfig
from services.provider.adapters.aiohttp_transport import Reply
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.embeddings import openai_answer, openai_body
from services.provider.adapters.endpoints import (
    NO_KEY,
    public_url,
    resolve_base_url,
    resolve_credential,
    same_host,
)
from services.provider.adapters.http_client import default_timeout, http_client, request_timeout
from services.provider.adapters.openai_errors import CAUGHT, from_exception
from services.provider.adapters.openai_request import build_body
from services.provider.adapters.openai_response import StreamTranslator, completion
from services.provider.adapters.sdk_post import JsonPoster
from services.provider.adapters.sse_json import SseJsonAdapter
from services.provider.adapters.unconfigured import UnconfiguredAdapter
from services.provider.adapters.upstream_errors import malformed

OPENAI_URL = "https://api.openai.com/v1"

_BEARER: dict[str, bool] = {"bearer_auth": True}


class OpenAIAdapter(SseJsonAdapter):
    def __init__(
        self,
        info: provider_pb2.ProviderInfo,
        config: ProviderConfig,
        client: openai.AsyncOpenAI,
        *,
        chat_path: Callable[[str], str],
        embeddings_path: Callable[[str], str],
        max_tokens_field: str,
    ) -> None:
        self._info = info
        self._name = info.name
        self._config = config
        self._client = client
        self._poster = JsonPoster(client, FinalRequestOptions, security=_BEARER)
        self._chat_path = chat_path
        self._embeddings_path = embeddings_path
        self._max_tokens_field = max_tokens_field

    @property
    def info(self) -> provider_pb2.ProviderInfo:
        return self._info

    async def _send(
        self, path: str, body: Any, model: str, timeout: float | None, *, stream: bool = False
    ) -> Reply:
        try:
            return await self._poster.post(
                path,
                orjson.dumps(body),
                request_timeout(self._config, timeout),
                stream=stream,
            )
        except CAUGHT as error:
            raise from_exception(error, provider=self._name, model=model) from None

    async def _post(
        self, request: provider_pb2.CompleteRequest, timeout: float | None, *, stream: bool
    ) -> Reply:
        body = build_body(request, stream=stream, max_tokens_field=self._max_tokens_field)
        return await self._send(
            self._chat_path(request.model), body, request.model, timeout, stream=stream
        )

    async def embed(
        self, request: provider_pb2.EmbedRequest, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        response = await self._send(
            self._embeddings_path(request.model), openai_body(request), request.model, timeout
        )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        return openai_answer(body, request, self._name)

    def _completion(self, body: Any, model: str) -> provider_pb2.CompleteResponse:
        return completion(body, provider=self._name, model=model)

    def _translator(self, model: str) -> StreamTranslator:
        return StreamTranslator(self._name, model)

    async def _get(self, path: str, timeout: float | None) -> Any:
        try:
            options: Any = {"timeout": request_timeout(self._config, timeout), "security": _BEARER}
            response = await self._client.get(path, cast_to=httpx2.Response, options=options)
        except CAUGHT as error:
            raise from_exception(error, provider=self._name, model="") from None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None

    async def list_models(self, timeout: float | None) -> list[provider_pb2.ProviderModel]:
        body = await self._get("/models", timeout)
        models = []
        for entry in (body.get("data") if isinstance(body, dict) else None) or ():
            model = provider_pb2.ProviderModel(
                id=entry.get("id") or "", owned_by=entry.get("owned_by") or ""
            )
            created = entry.get("created")
            if isinstance(created, int) and created > 0:
                model.create_time.FromDatetime(datetime.fromtimestamp(created, UTC))
            models.append(model)
        return models

    async def check(self, timeout: float | None) -> None:
        await self._get("/models", timeout)

    async def close(self) -> None:
        await self._client.close()


def _chat_completions(model: str) -> str:
    return "/chat/completions"


def _embeddings(model: str) -> str:
    return "/embeddings"


def _azure_chat_completions(model: str) -> str:
    # The deployment is the model on Azure, and part of the path.
    return f"/deployments/{quote(model, safe='')}/chat/completions"


def _azure_embeddings(model: str) -> str:
    return f"/deployments/{quote(model, safe='')}/embeddings"


def build_openai(name: str, config: ProviderConfig, environ: Mapping[str, str]) -> ProviderAdapter:
    """OpenAI, or any OpenAI-compatible server by base URL. Only OpenAI's own endpoint
    requires a key; local servers may run without one (a placeholder is sent)."""
    base_url = resolve_base_url(
        name, config, environ, standard_variable="OPENAI_BASE_URL", default=OPENAI_URL
    )
    official = same_host(base_url, OPENAI_URL)
    credential = resolve_credential(config, environ, "OPENAI_API_KEY", official=official)
    info = provider_pb2.ProviderInfo(
        name=name,
        type=provider_pb2.PROVIDER_TYPE_OPENAI,
        base_url=public_url(base_url),
        has_credentials=credential.value is not None,
    )
    if credential.value is None and official:
        return UnconfiguredAdapter(info, credential.variable)
    client = openai.AsyncOpenAI(
        api_key=credential.value or NO_KEY,
        base_url=base_url,
        max_retries=0,
        timeout=default_timeout(config),
        default_headers=config.headers or None,
        http_client=http_client(config),
    )
    return OpenAIAdapter(
        info,
        config,
        client,
        chat_path=_chat_completions,
        embeddings_path=_embeddings,
        max_tokens_field="max_completion_tokens" if official else "max_tokens",
    )


def build_azure(name: str, config: ProviderConfig, environ: Mapping[str, str]) -> ProviderAdapter:
    endpoint = resolve_base_url(
        name, config, environ, standard_variable="AZURE_OPENAI_ENDPOINT", default=None
    )
    api_version = config.api_version or environ.get("OPENAI_API_VERSION")
    if not api_version:
        raise ConfigError(f"providers.{name}.api_version: not set (set it or OPENAI_API_VERSION)")
    # Every Azure endpoint is the customer's own: the standard key serves any of them.
    credential = resolve_credential(config, environ, "AZURE_OPENAI_API_KEY", official=True)
    info = provider_pb2.ProviderInfo(
        name=name,
        type=provider_pb2.PROVIDER_TYPE_AZURE_OPENAI,
        base_url=public_url(endpoint),
        has_credentials=credential.value is not None,
    )
    if credential.value is None:
        return UnconfiguredAdapter(info, credential.variable)
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=endpoint,
        api_version=api_version,
        api_key=credential.value,
        max_retries=0,
        timeout=default_timeout(config),
        default_headers=config.headers or None,
        http_client=http_client(config),
    )
    return OpenAIAdapter(
        info,
        config,
        client,
        chat_path=_azure_chat_completions,
        embeddings_path=_azure_embeddings,
        max_tokens_field="max_completion_tokens",
    )
