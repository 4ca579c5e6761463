"""Value types of the job port."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType, TypeAlias
from uuid import UUID

from application.jobs.schedules import Cron
from domain.jobs import DoNotRetry

JobId = NewType("JobId", UUID)
BatchId = NewType("BatchId", UUID)

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None


class JobState(StrEnum):
    SCHEDULED = "scheduled"
    AWAITING = "awaiting"
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"

    @property
    def is_final(self) -> bool:
        """Succeeded, failed and deleted jobs wait for nothing (a failed one may be requeued)."""
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DELETED})


class ContinueOn(StrEnum):
    """When a continuation (of a job or of a batch) is enqueued."""

    SUCCESS = "success"
    ANY_FINISHED = "any_finished"


class OnExhausted(StrEnum):
    """Where a job goes once its retries are used up."""

    FAIL = "fail"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and when a failing job runs again.

    `attempts` counts every execution, the first included. With `delays` set, retry n waits
    `delays[n-1]` seconds (the last delay repeats); otherwise it waits
    `min(max_delay, base_delay * 2 ** (n-1))`, of which a random `jitter` share is taken off.

    A failure is not retried (the job goes where exhausted jobs go at once) when its exception
    is, or derives from, one of `give_up_on`, or when `retry_on` is given and it is none of
    those; nor ever when it is a `DoNotRetry` (a business record that is gone, among others).
    Exception types may be given as classes or as qualified names (`"decimal.InvalidOperation"`);
    they are kept as names, so the policy can be stored.
    """

    attempts: int = 10
    delays: tuple[float, ...] = ()
    base_delay: float = 15.0
    max_delay: float = 3600.0
    jitter: float = 0.5
    on_exhausted: OnExhausted = OnExhausted.FAIL
    retry_on: tuple[type[BaseException] | str, ...] = ()
    give_up_on: tuple[type[BaseException] | str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_on", tuple(map(exception_name, self.retry_on)))
        object.__setattr__(self, "give_up_on", tuple(map(exception_name, self.give_up_on)))
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if any(d < 0 for d in self.delays) or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """Run once; a failure is final."""
        return cls(attempts=1)

    def retries(self, error: BaseException) -> bool:
        """Whether a failure with this exception may be retried (attempts left aside)."""
        names = {exception_name(cls) for cls in type(error).__mro__}
        if exception_name(DoNotRetry) in names or names.intersection(self.give_up_on):
            return False
        return not self.retry_on or bool(names.intersection(self.retry_on))


def exception_name(error_type: type[BaseException] | str) -> str:
    """The qualified name an exception type is known by in a stored retry policy."""
    if isinstance(error_type, str):
        return error_type
    return f"{error_type.__module__}.{error_type.__qualname__}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One recorded state change of a job."""

    state: JobState
    at: dt.datetime
    reason: str
    data: dict[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobError:
    """Why the last execution failed."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    at: dt.datetime
    level: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobView:
    """Read model of one job."""

    id: JobId
    handler: str
    args: list[JSONValue]
    kwargs: dict[str, JSONValue]
    queue: str
    state: JobState
    created_at: dt.datetime
    run_at: dt.datetime | None
    """When the job runs, or ran, as it was last scheduled (kept after it came due)."""
    expires_at: dt.datetime | None
    """Not started by then, it is deleted as expired instead of running late."""
    attempt: int
    max_attempts: int
    history: tuple[Transition, ...]
    error: JobError | None
    progress: float
    logs: tuple[LogLine, ...]
    result: JSONValue
    unique_key: str | None
    parent_id: JobId | None
    batch_id: BatchId | None
    recurring_id: str | None
    queue_unserved: bool = False
    """The job waits (enqueued, scheduled or awaiting) for a queue that no live server
    takes jobs from: it will not run until one does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecurringView:
    """Read model of one recurring job."""

    id: str
    cron: Cron
    handler: str
    args: list[JSONValue]
    kwargs: dict[str, JSONValue]
    queue: str
    paused: bool
    next_run_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_job_id: JobId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchView:
    """Read model of a batch: how many of its jobs are in each state."""

    id: BatchId
    total: int
    counts: dict[JobState, int]
    continuation_id: JobId | None

    @property
    def finished(self) -> int:
        return sum(n for state, n in self.counts.items() if state.is_final)
