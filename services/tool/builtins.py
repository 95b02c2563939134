"""The built-in tools: the product's documented downstream services, schemas in code.

Each is an HTTP tool like any other; it is registered only when its service's base URL
is configured (`tools.downstream.search_url`, `tools.downstream.agents_url`). The
downstream contract (what tests/fakes/downstream_fake.py speaks):

- `POST {search_url}/search` `{"query", "top_k"}` -> `{"results": [{"chunk_id", "score",
  "text", "source"}]}`
- `GET {search_url}/chunks/{chunk_id}` -> `{"chunk_id", "text", "source", "metadata"}`
- `POST {agents_url}/review` `{"code", "language"?, "focus"?}` -> `{"summary", "findings"}`
- `POST {agents_url}/architecture` `{"description", "components"?}` -> `{"summary",
  "recommendations"}`
- `POST {agents_url}/documentation` `{"code", "format"?}` -> `{"documentation"}`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.common.tool_config import (
    BUILTIN_TOOL_IDS,
    DownstreamConfig,
    HttpExecutorConfig,
    ToolDefinition,
)

Service = Literal["search_url", "agents_url"]


def _text(description: str, max_length: int = 1_000_000) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "description": description}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    parameters: dict[str, Any]
    service: Service
    method: Literal["GET", "POST"]
    path: str

    def definition(self, base_url: str) -> ToolDefinition:
        return ToolDefinition(
            name=self.name,
            description=self.description,
            parameters=self.parameters,
            http=HttpExecutorConfig(
                method=self.method,
                url_template=base_url + self.path,
                json_body=self.method == "POST",
            ),
        )


BUILTINS: tuple[Builtin, ...] = (
    Builtin(
        name="search_corpus",
        description=(
            "Searches the document corpus and returns the best-matching chunks with their "
            "score, text and source."
        ),
        parameters=_object(
            {
                "query": _text("What to search for, in natural language.", 4096),
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "default": 5,
                    "description": "How many chunks to return.",
                },
            },
            ["query"],
        ),
        service="search_url",
        method="POST",
        path="/search",
    ),
    Builtin(
        name="get_chunk",
        description="Fetches one chunk of the corpus by id, with its text, source and metadata.",
        parameters=_object(
            {"chunk_id": _text("The chunk's id, as search_corpus returned it.", 256)},
            ["chunk_id"],
        ),
        service="search_url",
        method="GET",
        path="/chunks/{chunk_id}",
    ),
    Builtin(
        name="review_code",
        description=(
            "Reviews source code and returns a summary and findings (severity, line, message)."
        ),
        parameters=_object(
            {
                "code": _text("The source code to review."),
                "language": _text("Programming language, e.g. python.", 64),
                "focus": _text("What to concentrate on, e.g. security or performance.", 256),
            },
            ["code"],
        ),
        service="agents_url",
        method="POST",
        path="/review",
    ),
    Builtin(
        name="analyze_architecture",
        description=(
            "Analyses a system's architecture from its description and returns a summary "
            "and recommendations."
        ),
        parameters=_object(
            {
                "description": _text("The system: purpose, parts and how they interact."),
                "components": {
                    "type": "array",
                    "items": _text("A component's name.", 256),
                    "maxItems": 200,
                    "description": "The system's components, if known.",
                },
            },
            ["description"],
        ),
        service="agents_url",
        method="POST",
        path="/architecture",
    ),
    Builtin(
        name="generate_documentation",
        description="Writes documentation for source code, in Markdown or reStructuredText.",
        parameters=_object(
            {
                "code": _text("The source code to document."),
                "format": {
                    "type": "string",
                    "enum": ["markdown", "rst"],
                    "default": "markdown",
                    "description": "Output format.",
                },
            },
            ["code"],
        ),
        service="agents_url",
        method="POST",
        path="/documentation",
    ),
)

assert tuple(b.name for b in BUILTINS) == BUILTIN_TOOL_IDS, "BUILTIN_TOOL_IDS is out of date"


def builtin_definitions(downstream: DownstreamConfig) -> list[ToolDefinition]:
    """The built-in tools whose downstream service is configured."""
    urls: dict[Service, str | None] = {
        "search_url": downstream.search_url,
        "agents_url": downstream.agents_url,
    }
    definitions = []
    for builtin in BUILTINS:
        base = urls[builtin.service]
        if base is not None:
            definitions.append(builtin.definition(base))
    return definitions
