"""A request's token counts as the routing strategies estimate them, before any call.

No tokenizer: lowest_cost only ranks deployments, so a count within a few tens of percent
is enough, and it must cost microseconds. The characters counted are the request's
encoded protobuf size, computed natively in one call: every text part, name, tool-call
argument, tool definition and schema, plus a byte or two of framing per field (which
stands in for the providers' own framing). At about four characters per token that is
close for English; UTF-8 counts denser scripts as several bytes a character, which
suits their denser tokenization. Each message adds a fixed overhead for its role
markers. Images are the exception: they are billed by size, not by their URL (a `data:`
URL is megabytes of base64), so their bytes are replaced by a fixed token count.
"""

from __future__ import annotations

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2

CHARS_PER_TOKEN = 4
# Role markers and separators around each message (OpenAI's accounting: 3-4).
MESSAGE_OVERHEAD_TOKENS = 4
# Tokens that prime the reply after the last message.
REPLY_OVERHEAD_TOKENS = 3
# Framing of one tool definition beyond its name, description and schema.
TOOL_OVERHEAD_TOKENS = 8
# OpenAI's price of a low-detail image, and of a 1024x1024 image otherwise.
LOW_DETAIL_IMAGE_TOKENS = 85
IMAGE_TOKENS = 765


def estimate_prompt_tokens(request: provider_pb2.CompleteRequest) -> int:
    messages = request.messages
    tokens = (
        REPLY_OVERHEAD_TOKENS
        + MESSAGE_OVERHEAD_TOKENS * len(messages)
        + TOOL_OVERHEAD_TOKENS * len(request.tools)
    )
    chars = request.ByteSize()
    for message in messages:
        for part in message.content:
            if not part.text and part.HasField("image_url"):
                chars -= part.ByteSize()
                low = part.image_url.detail == "low"
                tokens += LOW_DETAIL_IMAGE_TOKENS if low else IMAGE_TOKENS
    return tokens + max(chars, 0) // CHARS_PER_TOKEN


def estimate_output_tokens(request: provider_pb2.CompleteRequest, default: int) -> int:
    """The request's output limit, or `default` (the configured typical answer length)
    when it sets none."""
    if request.HasField("max_tokens") and request.max_tokens > 0:
        return int(request.max_tokens)
    return default


def estimate_message_tokens(message: common_pb2.Message) -> int:
    """One message's share of `estimate_prompt_tokens` (images counted by their bytes)."""
    return MESSAGE_OVERHEAD_TOKENS + message.ByteSize() // CHARS_PER_TOKEN
