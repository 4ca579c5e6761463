"""The job port for code that cannot await (Django and Flask views, scripts, sync handlers).

`SyncJobService` has the methods of `JobService`, with the same arguments, checks and errors,
but blocking. It is one thin facade over the async port, never a second implementation.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import ParamSpec, Protocol

from application.jobs.schedules import Cron
from application.jobs.service import Handler
from application.jobs.values import (
    BatchId,
    BatchView,
    ContinueOn,
    JobId,
    JobView,
    RecurringView,
    RetryPolicy,
)

P = ParamSpec("P")


class SyncBatch(Protocol):
    """`Batch`, blocking."""

    @property
    def id(self) -> BatchId: ...

    def enqueue(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId: ...

    def then(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId: ...


class SyncJobService(Protocol):
    """`JobService` for synchronous callers; safe to call from any thread, including the
    worker threads of a running event loop. Each method blocks until the async port's
    method returns, and raises what it raises. See `JobService` for each method's contract."""

    def options(
        self,
        *,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: dt.timedelta | None = None,
        unique_key: str | None = None,
        continue_on: ContinueOn | None = None,
        session: object | None = None,
        expires_at: dt.datetime | None = None,
        expires_in: dt.timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> SyncJobService: ...

    def enqueue(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId: ...

    def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Handler[P],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> JobId: ...

    def continue_with(
        self, parent: JobId, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> JobId: ...

    def batch(self) -> AbstractContextManager[SyncBatch]:
        """Collect jobs inside a `with` block and create them all at its end."""

    def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        handler: Handler[P],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None: ...

    def remove_recurring(self, recurring_id: str) -> bool: ...

    def trigger_recurring(self, recurring_id: str) -> JobId: ...

    def pause_recurring(self, recurring_id: str) -> None: ...

    def resume_recurring(self, recurring_id: str) -> None: ...

    def delete(self, job_id: JobId) -> None: ...

    def requeue(self, job_id: JobId) -> None: ...

    def get(self, job_id: JobId) -> JobView: ...

    def wait(self, job_id: JobId, *, timeout: dt.timedelta | float | None = None) -> JobView: ...

    def get_recurring(self, recurring_id: str) -> RecurringView: ...

    def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringView]: ...

    def get_batch(self, batch_id: BatchId) -> BatchView: ...
