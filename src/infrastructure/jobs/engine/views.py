"""What every store shows of a job the same way: the full view, and the allowed list orders."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from application.jobs import (
    JobError,
    JobSort,
    JobView,
    JSONValue,
    LogLine,
    RecurringView,
    Transition,
)
from infrastructure.jobs.engine.model import Job, RecurringJob
from infrastructure.jobs.engine.stored_text import readable_json, storable

SORTS: dict[JobSort, tuple[str, bool]] = {
    JobSort.NEWEST: ("created_at", True),
    JobSort.OLDEST: ("created_at", False),
    JobSort.RECENTLY_CHANGED: ("state_at", True),
    JobSort.LEAST_RECENTLY_CHANGED: ("state_at", False),
}
"""Each allowed sort: the summary field (a column of the same name) and whether it descends;
ties go by id in the same direction."""


def job_view(
    job: Job,
    *,
    history: Iterable[Transition],
    logs: Iterable[LogLine],
    error: JobError | None,
    progress: float,
    result: JSONValue,
) -> JobView:
    """The job as operators see it; its stored JSON made safe to show (`readable_json`)."""
    return JobView(
        id=job.id,
        handler=job.handler,
        args=[readable_json(arg) for arg in job.args],
        kwargs={storable(k): readable_json(v) for k, v in job.kwargs.items()},
        queue=job.queue,
        state=job.state,
        created_at=job.created_at,
        run_at=job.run_at,
        expires_at=job.expires_at,
        attempt=job.attempt,
        max_attempts=job.retry.attempts,
        history=tuple(_readable_transition(t) for t in history),
        error=error,
        progress=progress,
        logs=tuple(logs),
        result=readable_json(result),
        unique_key=job.unique_key,
        parent_id=job.parent_id,
        batch_id=job.batch_id,
        recurring_id=job.recurring_id,
    )


def _readable_transition(transition: Transition) -> Transition:
    data = {storable(k): readable_json(v) for k, v in transition.data.items()}
    return dataclasses.replace(transition, data=data)


def recurring_view(definition: RecurringJob) -> RecurringView:
    return RecurringView(
        id=definition.id,
        cron=definition.cron,
        handler=definition.handler,
        args=definition.args,
        kwargs=definition.kwargs,
        queue=definition.queue,
        paused=definition.paused,
        next_run_at=definition.next_run_at,
        last_run_at=definition.last_run_at,
        last_job_id=definition.last_job_id,
    )
