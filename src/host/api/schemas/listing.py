"""Bodies of the operators' job lists and bulk actions."""

from __future__ import annotations

import datetime as dt
from typing import Self
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from application.jobs import BulkResult, JobFilter, JobState, JobSummary
from host.api.inputs import Instant, Name, QueueName
from host.api.schemas.base import Body, View, fields_of


class JobSummaryOut(View):
    """One row of a job list."""

    id: UUID
    handler: str
    queue: str
    state: JobState
    created_at: dt.datetime
    state_at: dt.datetime
    run_at: dt.datetime | None
    attempt: int
    progress: float
    error_type: str | None
    recurring_id: str | None

    @classmethod
    def of(cls, job: JobSummary) -> Self:
        return cls(**fields_of(job))


class JobPageOut(View):
    """A page of jobs; pass `next_cursor` as `cursor` for the next one (null: last page)."""

    items: list[JobSummaryOut]
    next_cursor: str | None


class JobFilterBody(Body):
    """Which jobs a bulk action covers: at least one criterion, so `{}` cannot mean all."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"states": ["failed"], "handler": "EmailJobs.send_welcome"}],
        }
    )

    states: list[JobState] = Field(default_factory=list, max_length=len(JobState))
    queue: QueueName | None = None
    handler: Name | None = None
    text: Name | None = Field(None, description="Substring of the arguments.")
    created_from: Instant | None = Field(None, description="Created at or after (inclusive).")
    created_to: Instant | None = Field(None, description="Created before (exclusive).")
    recurring_id: Name | None = None

    @model_validator(mode="after")
    def _some_criterion(self) -> Self:
        if self.to_filter() == JobFilter():
            raise ValueError("give at least one criterion; a bulk action never covers all jobs")
        return self

    def to_filter(self) -> JobFilter:
        return JobFilter(
            states=frozenset(self.states),
            queue=self.queue,
            handler=self.handler,
            text=self.text,
            created_from=self.created_from,
            created_to=self.created_to,
            recurring_id=self.recurring_id,
        )


class SkippedJobOut(View):
    """A job a bulk action left alone, and why."""

    id: UUID
    state: JobState | None = Field(description="Its state; null when it was gone meanwhile.")
    reason: str


class BulkResultOut(View):
    """What a bulk action did; processing jobs are skipped by a requeue, and so is a job
    whose unique key another active job holds. `skipped_jobs` names the first 100 skipped."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "matched": 12,
                    "changed": 11,
                    "skipped": 1,
                    "skipped_jobs": [
                        {
                            "id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                            "state": "processing",
                            "reason": "processing: left alone by this action",
                        }
                    ],
                }
            ]
        }
    )

    matched: int
    changed: int
    skipped: int
    skipped_jobs: list[SkippedJobOut] = Field(default_factory=list)

    @classmethod
    def of(cls, result: BulkResult) -> Self:
        return cls(
            matched=result.matched,
            changed=result.changed,
            skipped=result.skipped,
            skipped_jobs=[
                SkippedJobOut(id=s.job_id, state=s.state, reason=s.reason)
                for s in result.skipped_jobs
            ],
        )
