"""What every body shares: unknown fields refused, bounds, the port's values as fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

MAX_DELAY_SECONDS = 10 * 366 * 24 * 3600
MAX_GRACE_SECONDS = 366 * 24 * 3600


class Body(BaseModel):
    """A request body: unknown fields are refused, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class View(BaseModel):
    """A response body (built from the port's views, so no field goes unnoticed)."""

    model_config = ConfigDict(extra="forbid")


def fields_of(value: Any) -> dict[str, Any]:
    """A slotted dataclass's fields by name."""
    return {name: getattr(value, name) for name in value.__dataclass_fields__}
