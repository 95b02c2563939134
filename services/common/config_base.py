"""The base of every section model of the configuration file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A section that refuses unknown keys (a typo is an error, not a silent default)
    and cannot be changed once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
