"""Protocol-faithful fake LLM provider servers (OpenAI, Anthropic, Ollama) for tests
and benchmarks; see `Behaviour` for how to script them."""

from tests.fakes.anthropic_fake import FakeAnthropic
from tests.fakes.behaviour import DEFAULT_TEXT, Behaviour, ToolCallSpec
from tests.fakes.control import AsyncFakeControl, FakeControl
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.fakes.state import FakeStats, RecordedRequest

FAKES: dict[str, type[FakeServer]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "ollama": FakeOllama,
}

__all__ = [
    "DEFAULT_TEXT",
    "FAKES",
    "AsyncFakeControl",
    "Behaviour",
    "FakeAnthropic",
    "FakeControl",
    "FakeOllama",
    "FakeOpenAI",
    "FakeServer",
    "FakeStats",
    "RecordedRequest",
    "ToolCallSpec",
]
