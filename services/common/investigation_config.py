"""The `investigations:` section of the configuration file: the Investigation service's
model, limits, workers and windows."""

from __future__ import annotations

from pydantic import Field, model_validator

from services.common.config_base import Strict


class InvestigationLimitsConfig(Strict):
    """Limits of one investigation (InvestigationLimits in the API)."""

    # Model calls at most; the last one is offered no tools.
    max_steps: int = Field(default=8, ge=1, le=100)
    # Wall-clock seconds at most, context gathering included.
    time_limit_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # Tokens (input + output) of all model calls at most.
    max_tokens: int = Field(default=200_000, ge=1, le=100_000_000)
    # Cost in the gateway's currency at most (0: no cost limit).
    max_cost: float = Field(default=0.0, ge=0, le=1_000_000)


def _ceilings() -> InvestigationLimitsConfig:
    return InvestigationLimitsConfig(
        max_steps=30, time_limit_seconds=1800.0, max_tokens=2_000_000, max_cost=0.0
    )


class InvestigationConfig(Strict):
    # The model investigations use when the request names none (a catalogue name or
    # alias); None: the catalogue's default_model; `none`: analyzers only.
    default_model: str | None = None
    # What a request that sets no limit gets.
    defaults: InvestigationLimitsConfig = Field(default_factory=InvestigationLimitsConfig)
    # The most a request may ask for (a higher value is INVALID_ARGUMENT; max_cost 0:
    # a request may set any cost limit).
    ceilings: InvestigationLimitsConfig = Field(default_factory=_ceilings)
    # Investigations one replica works on at once.
    workers: int = Field(default=8, ge=1, le=256)
    # A job whose worker has not renewed its claim for this long is taken over.
    claim_idle_seconds: float = Field(default=30.0, gt=0)
    # How often a worker renews its claim (must be well under claim_idle_seconds).
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    # How long finished investigations and their events are kept.
    retention_seconds: int = Field(default=7 * 86_400, gt=0)
    # A firing alert whose fingerprint finished investigating this recently is
    # deduplicated instead of investigated again.
    dedup_window_seconds: int = Field(default=3600, ge=0)
    # Context tool results are reused for this long across investigations of the same
    # alert (0: off).
    context_cache_seconds: int = Field(default=120, ge=0)
    # Time limit of one tool call.
    tool_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # Tool calls of one model step at most; further ones are refused to the model.
    max_tool_calls_per_step: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _consistent(self) -> InvestigationConfig:
        if self.heartbeat_seconds * 2 > self.claim_idle_seconds:
            raise ValueError(
                "heartbeat_seconds must be at most half of claim_idle_seconds, or a live "
                "worker's job is taken over"
            )
        d, c = self.defaults, self.ceilings
        if d.max_steps > c.max_steps or d.time_limit_seconds > c.time_limit_seconds:
            raise ValueError("defaults must not exceed ceilings")
        if d.max_tokens > c.max_tokens:
            raise ValueError("defaults must not exceed ceilings")
        return self
