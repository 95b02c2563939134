"""The ordered list of places one request may be served: its model's deployments, then
the deployments of its fallback models.

Each model's deployments are ordered by its routing strategy (or the request's override).
Fallback models are the requested model's own `fallbacks`, in order; their fallbacks are
not followed, so a chain stays as long as configured. An upstream already in the list
(same provider instance and upstream model) is not listed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.gateway_config import Deployment
from services.router.catalog import Catalog, ResolvedModel
from services.router.routing.stats import upstream_key
from services.router.routing.strategies import DeploymentOrderer, OrderingInput


@dataclass(frozen=True)
class Candidate:
    """One deployment of one public model."""

    model: str
    deployment: Deployment
    fallback_model: bool
    # The model's metric label (`ResolvedModel.label`: never a caller's free text).
    model_label: str

    @property
    def key(self) -> str:
        """The upstream it calls: breakers and statistics are kept per upstream, whichever
        public model reaches it."""
        return upstream_key(self.deployment)

    @property
    def label(self) -> str:
        return self.deployment.key


@dataclass(frozen=True)
class Plan:
    model: str
    strategy: str
    candidates: tuple[Candidate, ...]
    model_label: str


def _strategy(resolved: ResolvedModel, override: str) -> str:
    if override:
        return override
    return resolved.entry.routing if resolved.entry is not None else "priority"


def build_plan(
    catalog: Catalog,
    resolved: ResolvedModel,
    orderer: DeploymentOrderer,
    request: OrderingInput,
    *,
    strategy: str = "",
    fallbacks: bool = True,
) -> Plan:
    chosen = _strategy(resolved, strategy)
    models = [(resolved, False)]
    if fallbacks and resolved.entry is not None:
        models += [(catalog.resolve(name), True) for name in resolved.entry.fallbacks]
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for model, is_fallback in models:
        order = (
            orderer.order(_strategy(model, strategy), model.name, model.deployments, request)
            if len(model.deployments) > 1
            else list(model.deployments)
        )
        for deployment in order:
            candidate = Candidate(model.name, deployment, is_fallback, model.label)
            if candidate.key not in seen:
                seen.add(candidate.key)
                candidates.append(candidate)
    return Plan(
        model=resolved.name,
        strategy=chosen,
        candidates=tuple(candidates),
        model_label=resolved.label,
    )
