"""Ollama's native API (`/api/chat`, NDJSON streaming; `/api/embed`) over a plain HTTP
client.

Ollama needs no key. One set for Ollama's cloud or an authenticating proxy (`api_key_env`,
or `OLLAMA_API_KEY` for the endpoint `OLLAMA_HOST` names) is sent as a Bearer token.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
from google.protobuf import timestamp_pb2

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.gateway_config import ConfigError, ProviderConfig
from services.provider.adapters.aiohttp_transport import UNARY
from services.provider.adapters.base import ProviderAdapter
from services.provider.adapters.embeddings import ollama_answer, ollama_body
from services.provider.adapters.endpoints import (
    public_url,
    resolve_base_url,
    resolve_credential,
)
from services.provider.adapters.framing import ndjson_batches
from services.provider.adapters.http_client import http_client, request_timeout
from services.provider.adapters.ollama_errors import from_response, from_transport
from services.provider.adapters.ollama_request import build_body
from services.provider.adapters.ollama_response import StreamTranslator, completion
from services.provider.adapters.stream_relay import relay
from services.provider.adapters.upstream_errors import malformed

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
_JSON_HEADERS = {"Content-Type": "application/json"}


def ollama_base_url(host: str) -> str:
    """An endpoint in any form `OLLAMA_HOST` takes, read as Ollama's own clients read it:
    `host`, `host:port`, `:port` or `scheme://host[:port][/path]`. Without a scheme the
    scheme is http and the port 11434; with one, the scheme's default port."""
    scheme, separator, rest = host.strip().partition("://")
    port = DEFAULT_PORT
    if not separator:
        scheme, rest = "http", host.strip()
    else:
        port = 443 if scheme == "https" else 80
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        port = parts.port or port
    except ValueError:
        raise ConfigError(
            f"invalid Ollama endpoint: the port of host '{parts.hostname}' is not a number"
        ) from None
    hostname = parts.hostname or DEFAULT_HOST
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return f"{scheme}://{hostname}:{port}{parts.path.rstrip('/')}"


class OllamaAdapter:
    def __init__(
        self,
        info: provider_pb2.ProviderInfo,
        config: ProviderConfig,
        client: httpx2.AsyncClient,
    ) -> None:
        self._info = info
        self._name = info.name
        self._config = config
        self._client = client

    @property
    def info(self) -> provider_pb2.ProviderInfo:
        return self._info

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None,
        timeout: float | None,
        stream: bool,
        model: str,
    ) -> httpx2.Response:
        request = self._client.build_request(
            method,
            path,
            content=None if body is None else orjson.dumps(body),
            headers=None if body is None else _JSON_HEADERS,
            timeout=request_timeout(self._config, timeout),
            extensions=None if stream else {UNARY: True},
        )
        try:
            response = await self._client.send(request, stream=stream)
        except httpx2.HTTPError as error:
            raise from_transport(error, provider=self._name) from None
        if response.is_error:
            try:
                content = await response.aread()
            except httpx2.HTTPError:
                content = b""
            finally:
                await response.aclose()
            raise from_response(
                response.status_code, content, response.headers, provider=self._name, model=model
            )
        return response

    async def complete(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> provider_pb2.CompleteResponse:
        body = build_body(request, stream=False)
        response = await self._send(
            "POST", "/api/chat", body=body, timeout=timeout, stream=False, model=request.model
        )
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        return completion(
            answer, provider=self._name, model=request.model, token=secrets.token_hex(8)
        )

    async def stream(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        body = build_body(request, stream=True)
        response = await self._send(
            "POST", "/api/chat", body=body, timeout=timeout, stream=True, model=request.model
        )
        translator = StreamTranslator(self._name, request.model, secrets.token_hex(8))
        frames = ndjson_batches(response.aiter_bytes(), self._config.max_event_bytes)
        relayed = relay(response, frames, translator, self._name, self._config.stream_idle_timeout)
        async with aclosing(relayed) as events:
            async for event in events:
                yield event

    async def embed(
        self, request: provider_pb2.EmbedRequest, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        response = await self._send(
            "POST",
            "/api/embed",
            body=ollama_body(request),
            timeout=timeout,
            stream=False,
            model=request.model,
        )
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        return ollama_answer(answer, request, self._name)

    async def _tags(self, timeout: float | None) -> Any:
        response = await self._send(
            "GET", "/api/tags", body=None, timeout=timeout, stream=False, model=""
        )
        try:
            tags = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise malformed(self._name, "the body is not JSON") from None
        if not isinstance(tags, dict):
            raise malformed(self._name, "the model list is not a JSON object")
        return tags

    async def list_models(self, timeout: float | None) -> list[provider_pb2.ProviderModel]:
        models = []
        for entry in (await self._tags(timeout)).get("models") or ():
            name = entry.get("name") or entry.get("model") or ""
            model = provider_pb2.ProviderModel(id=name, display_name=name)
            modified = entry.get("modified_at")
            if isinstance(modified, str):
                model.create_time.CopyFrom(_timestamp(modified))
            models.append(model)
        return models

    async def check(self, timeout: float | None) -> None:
        await self._tags(timeout)

    async def close(self) -> None:
        await self._client.aclose()


def _timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    try:
        stamp.FromJsonString(text)
    except ValueError:
        stamp.Clear()
    return stamp


def build_ollama(name: str, config: ProviderConfig, environ: Mapping[str, str]) -> ProviderAdapter:
    base_url = ollama_base_url(
        resolve_base_url(
            name,
            config,
            environ,
            standard_variable="OLLAMA_HOST",
            default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
        )
    )
    credential = resolve_credential(config, environ, "OLLAMA_API_KEY", official=False)
    headers = dict(config.headers)
    if credential.value is not None:
        headers["Authorization"] = f"Bearer {credential.value}"
    info = provider_pb2.ProviderInfo(
        name=name,
        type=provider_pb2.PROVIDER_TYPE_OLLAMA,
        base_url=public_url(base_url),
        has_credentials=credential.value is not None,
    )
    return OllamaAdapter(info, config, http_client(config, base_url=base_url, headers=headers))
