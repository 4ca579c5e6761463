"""Bodies of recurring jobs."""

from __future__ import annotations

import datetime as dt
from typing import Self
from uuid import UUID

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
)

from application.jobs import (
    Misfire,
    MisfirePolicy,
    RecurringView,
)
from host.api.inputs import Name, QueueName, TimeZone
from host.api.schemas.base import MAX_GRACE_SECONDS, Body, View


class MisfireBody(Body):
    """What to do about ticks missed while no scheduler ran."""

    kind: Misfire = Misfire.RUN_ONCE
    limit: StrictInt = Field(100, ge=1, le=10_000, description="`run_all`: at most this many.")
    grace_seconds: StrictFloat = Field(
        60.0, ge=0, le=MAX_GRACE_SECONDS, allow_inf_nan=False, description="Lateness allowed."
    )

    def to_policy(self) -> MisfirePolicy:
        return MisfirePolicy(
            kind=self.kind, limit=self.limit, grace=dt.timedelta(seconds=self.grace_seconds)
        )


class MisfireOut(View):
    """What a recurring job does about ticks missed while no scheduler ran."""

    kind: Misfire
    limit: int
    grace_seconds: float

    @classmethod
    def of(cls, policy: MisfirePolicy) -> Self:
        return cls(kind=policy.kind, limit=policy.limit, grace_seconds=policy.grace.total_seconds())


class RecurringRequest(Body):
    """A recurring job's definition (the whole of it: this replaces any previous one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cron": "0 2 * * *",
                    "timezone": "Europe/Berlin",
                    "handler": "ReportJobs.generate_daily",
                }
            ]
        }
    )

    cron: Name = Field(description="5 fields, or 6 with seconds first.")
    timezone: TimeZone = Field(
        "UTC",
        description="Time zone the expression is read in: an IANA name, or a Windows id "
        "(`Turkey Standard Time`) that is stored and shown as its IANA name.",
    )
    misfire: MisfireBody | None = None
    handler: Name
    args: list[JsonValue] = Field(default_factory=list, max_length=1000)
    kwargs: dict[str, JsonValue] = Field(default_factory=dict, max_length=1000)
    queue: QueueName | None = None


class RecurringOut(View):
    """A recurring job, with its next five fire times (none while paused)."""

    id: str
    cron: str
    timezone: str
    misfire: MisfireOut
    handler: str
    args: list[JsonValue]
    kwargs: dict[str, JsonValue]
    queue: str
    paused: bool
    next_run_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_job_id: UUID | None
    next_fire_times: list[dt.datetime]

    @classmethod
    def of(cls, recurring: RecurringView, next_fire_times: list[dt.datetime]) -> Self:
        return cls(
            id=recurring.id,
            cron=recurring.cron.expression,
            timezone=recurring.cron.timezone,
            misfire=MisfireOut.of(recurring.cron.misfire),
            handler=recurring.handler,
            args=recurring.args,
            kwargs=recurring.kwargs,
            queue=recurring.queue,
            paused=recurring.paused,
            next_run_at=recurring.next_run_at,
            last_run_at=recurring.last_run_at,
            last_job_id=recurring.last_job_id,
            next_fire_times=next_fire_times,
        )


class RecurringPageOut(View):
    """A page of recurring jobs; pass `next_cursor` as `cursor` for the next one (null: last
    page)."""

    items: list[RecurringOut]
    next_cursor: str | None


class TriggeredOut(View):
    """The job a trigger created."""

    id: UUID
