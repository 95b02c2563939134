"""The model catalogue: public names, aliases, prefix rules and the default model.

Resolution order for a requested name: exact catalogue name, alias, then the first
prefix rule that matches (prefix-routed models are served by the provider under the
requested name, minus the prefix when the rule strips it). An empty name means the
default model. Anything else is NOT_FOUND naming the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.gateway_config import (
    PREFIX_ROUTE,
    Deployment,
    GatewayConfig,
    ModelEntry,
    PrefixRule,
)

# The metric label of every model that is not a catalogue entry (prefix-routed names
# are the caller's to choose: they never become label values, stats or breaker keys).
OTHER_MODEL = "other"


def prefix_route_id(rule: PrefixRule) -> str:
    """The one deployment id, statistics and breaker key of every name a rule routes."""
    return f"{PREFIX_ROUTE}{rule.provider}/{rule.prefix}*"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a request for a model name goes."""

    # The public name answers carry (canonical for aliases, as requested for prefixes).
    name: str
    deployments: tuple[Deployment, ...]
    entry: ModelEntry | None = None
    rule: PrefixRule | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def source(self) -> str:
        return "catalogue" if self.entry is not None else "provider"

    @property
    def kind(self) -> str:
        """`chat` or `embedding`; a prefix-routed name is a chat model."""
        return self.entry.kind if self.entry is not None else "chat"

    def require_kind(self, kind: str) -> None:
        """INVALID_ARGUMENT naming `model` when the model serves the other API."""
        if self.kind == kind:
            return
        if self.kind == "embedding":
            raise InvalidArgument.for_field(
                "model", f"'{self.name}' is an embedding model; use /v1/embeddings"
            )
        raise InvalidArgument.for_field(
            "model", f"'{self.name}' is a chat model; use /v1/chat/completions"
        )

    @property
    def label(self) -> str:
        """The model's metric label: its catalogue name, else `other`."""
        return self.entry.name if self.entry is not None else OTHER_MODEL


class Catalog:
    """Immutable view of one loaded configuration; replaced whole on reload."""

    def __init__(self, config: GatewayConfig, loaded_at: int | None = None) -> None:
        self.config = config
        self.loaded_at = int(time.time()) if loaded_at is None else loaded_at
        self._by_name: dict[str, ModelEntry] = {}
        for entry in config.models:
            self._by_name[entry.name] = entry
            for alias in entry.aliases:
                self._by_name[alias] = entry

    @property
    def entries(self) -> list[ModelEntry]:
        return list(self.config.models)

    @property
    def prefixes(self) -> list[PrefixRule]:
        return list(self.config.prefixes)

    def resolve(self, requested: str) -> ResolvedModel:
        name = requested or (self.config.default_model or "")
        if not name:
            raise InvalidArgument.for_field("model", "required: no default model is configured")
        entry = self._by_name.get(name)
        if entry is not None:
            return ResolvedModel(
                name=entry.name,
                deployments=tuple(entry.deployments),
                entry=entry,
                aliases=tuple(entry.aliases),
            )
        for rule in self.config.prefixes:
            if name.startswith(rule.prefix):
                upstream = name[len(rule.prefix) :] if rule.strip_prefix else name
                if not upstream:
                    break
                deployment = Deployment(
                    provider=rule.provider, model=upstream, id=prefix_route_id(rule)
                )
                return ResolvedModel(name=name, deployments=(deployment,), rule=rule)
        raise NotFound(
            self._not_found_message(name),
            reason=error_reason_pb2.ERROR_REASON_MODEL_NOT_FOUND,
            resource_type="model",
            resource_name=name,
        )

    def _not_found_message(self, name: str) -> str:
        known = [e.name for e in self.config.models]
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        prefixes = ", ".join(f"{r.prefix}*" for r in self.config.prefixes)
        parts = [f"model '{name}' not found"]
        if shown:
            parts.append(f"catalogue: {shown}")
        if prefixes:
            parts.append(f"or a name matching {prefixes}")
        return "; ".join(parts)
