"""The routing decision of one request, as the caller, the logs and the metrics see it.

Callers read it from response metadata (gRPC) / headers (REST through Envoy):

    x-llmgw-model       public model that answered (differs from the request's on fallback)
    x-llmgw-provider    provider instance that answered
    x-llmgw-deployment  the deployment within that model
    x-llmgw-strategy    strategy that ordered the deployments
    x-llmgw-route       primary | retry | fallback (another deployment of the model) |
                        fallback_model (a configured fallback model)
    x-llmgw-attempts    upstream calls made
    x-llmgw-route-trail what happened before, `deployment=outcome` separated by `, `
                        (`UPSTREAM_UNAVAILABLE`, `circuit_open`, `at_capacity`, ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_UNSAFE = re.compile(r"[^\x21-\x7e]")
# Trail entries kept in the header; the log line keeps them all.
MAX_TRAIL = 12


def _header_safe(value: str) -> str:
    return _UNSAFE.sub("_", value)


@dataclass(frozen=True)
class TrailEntry:
    model: str
    deployment: str
    outcome: str
    called: bool


@dataclass
class RouteDecision:
    requested_model: str
    strategy: str
    model: str = ""
    # The answering model's metric label (`ResolvedModel.label`).
    model_label: str = ""
    provider: str = ""
    deployment: str = ""
    route: str = ""
    attempts: int = 0
    trail: list[TrailEntry] = field(default_factory=list)

    def failed(self, model: str, deployment: str, outcome: str) -> None:
        self.attempts += 1
        self.trail.append(TrailEntry(model, deployment, outcome, called=True))

    def skipped(self, model: str, deployment: str, outcome: str) -> None:
        self.trail.append(TrailEntry(model, deployment, outcome, called=False))

    def answered(
        self,
        model: str,
        provider: str,
        deployment: str,
        *,
        fallback_model: bool,
        model_label: str,
    ) -> None:
        self.attempts += 1
        self.model = model
        self.model_label = model_label
        self.provider = provider
        self.deployment = deployment
        if fallback_model:
            self.route = "fallback_model"
        elif any(e.deployment == deployment and e.called for e in self.trail):
            self.route = "retry"
        elif self.trail:
            self.route = "fallback"
        else:
            self.route = "primary"

    def _label(self, entry: TrailEntry) -> str:
        where = (
            entry.deployment
            if entry.model == self.requested_model
            else (f"{entry.model}:{entry.deployment}")
        )
        return f"{where}={entry.outcome}"

    def metadata(self) -> tuple[tuple[str, str], ...]:
        pairs = [
            ("x-llmgw-model", self.model),
            ("x-llmgw-provider", self.provider),
            ("x-llmgw-deployment", self.deployment),
            ("x-llmgw-strategy", self.strategy),
            ("x-llmgw-route", self.route),
            ("x-llmgw-attempts", str(self.attempts)),
        ]
        if self.trail:
            shown = [self._label(e) for e in self.trail[:MAX_TRAIL]]
            if len(self.trail) > MAX_TRAIL:
                shown.append(f"...{len(self.trail) - MAX_TRAIL}_more")
            pairs.append(("x-llmgw-route-trail", ",".join(shown)))
        return tuple((name, _header_safe(value)) for name, value in pairs if value)

    def log_fields(self) -> dict[str, Any]:
        return {
            "requested_model": self.requested_model,
            "model": self.model,
            "provider": self.provider,
            "deployment": self.deployment,
            "strategy": self.strategy,
            "route": self.route,
            "attempts": self.attempts,
            "trail": [self._label(e) for e in self.trail],
        }
