"""Protocol-faithful fake LLM provider servers (OpenAI, Anthropic, Ollama) for tests
and benchmarks; see `Behaviour` for how to script them. `FakeDownstream` fakes the
downstream services behind the built-in tools (scripted with `DownstreamBehaviour`)."""

from tests.fakes.anthropic_fake import FakeAnthropic
from tests.fakes.behaviour import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.fakes.control import AsyncFakeControl, FakeControl
from tests.fakes.downstream_fake import (
    AsyncDownstreamControl,
    DownstreamBehaviour,
    DownstreamControl,
    FakeDownstream,
)
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.fakes.state import FakeStats, RecordedRequest

# What `python -m tests.fakes KIND` runs; each takes api_key, host, port and record.
FAKES: dict[str, type[FakeServer] | type[FakeDownstream]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "ollama": FakeOllama,
    "downstream": FakeDownstream,
}

__all__ = [
    "DEFAULT_TEXT",
    "FAKES",
    "AsyncDownstreamControl",
    "AsyncFakeControl",
    "Behaviour",
    "DownstreamBehaviour",
    "DownstreamControl",
    "FakeAnthropic",
    "FakeControl",
    "FakeDownstream",
    "FakeOllama",
    "FakeOpenAI",
    "FakeServer",
    "FakeStats",
    "RecordedRequest",
    "ToolCallSpec",
]
