"""Bodies of batches, servers and statistics."""

from __future__ import annotations

import datetime as dt
from typing import Self
from uuid import UUID

from pydantic import (
    Field,
)

from application.jobs import (
    BatchView,
    JobState,
    JobStats,
    ServerView,
)
from host.api.schemas.base import View, fields_of


def _all_states(counts: dict[JobState, int]) -> dict[JobState, int]:
    return {state: counts.get(state, 0) for state in JobState}


class BatchOut(View):
    """A batch's progress: how many of its jobs are in each state."""

    id: UUID
    total: int
    counts: dict[JobState, int]
    finished: int
    progress: float = Field(ge=0, le=1, description="Share of the jobs that have finished.")
    continuation_id: UUID | None

    @classmethod
    def of(cls, batch: BatchView) -> Self:
        return cls(
            id=batch.id,
            total=batch.total,
            counts=_all_states(batch.counts),
            finished=batch.finished,
            progress=batch.finished / batch.total if batch.total else 1.0,
            continuation_id=batch.continuation_id,
        )


class ServerOut(View):
    """A live worker process."""

    id: str
    queues: list[str]
    concurrency: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    running: int = Field(description="Jobs it is processing now.")

    @classmethod
    def of(cls, server: ServerView) -> Self:
        return cls(**fields_of(server))


class MinuteOut(View):
    minute: dt.datetime
    succeeded: int
    failed: int


class StatsOut(View):
    """Jobs by state, and outcomes per minute over the last hour (oldest first)."""

    counts: dict[JobState, int]
    per_minute: list[MinuteOut]

    @classmethod
    def of(cls, stats: JobStats) -> Self:
        return cls(
            counts=_all_states(stats.counts),
            per_minute=[
                MinuteOut(minute=m.minute, succeeded=m.succeeded, failed=m.failed)
                for m in stats.per_minute
            ],
        )
