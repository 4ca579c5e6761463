"""The async port as the contract suite sees it, made of the synchronous port: each call goes
from the test's loop to a thread, through `SyncJobService`, to the async port on the sync
port's own loop. The smoke subset runs through it on the `*-sync` adapters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from application.jobs import (
    BatchId,
    BatchView,
    ContinueOn,
    Cron,
    JobId,
    JobView,
    RecurringView,
    RetryPolicy,
    SyncBatch,
    SyncJobService,
)


class AwaitingBatch:
    def __init__(self, batch: SyncBatch) -> None:
        self._batch = batch

    @property
    def id(self) -> BatchId:
        return self._batch.id

    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return await asyncio.to_thread(self._batch.enqueue, handler, *args, **kwargs)

    def then(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return self._batch.then(handler, *args, **kwargs)


class ThroughSyncPort:
    """`JobService` whose every call is a call of the synchronous port in a thread."""

    def __init__(self, port: SyncJobService) -> None:
        self._port = port

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
    ) -> ThroughSyncPort:
        return ThroughSyncPort(
            self._port.options(
                queue=queue,
                retry=retry,
                timeout=timeout,
                unique_key=unique_key,
                continue_on=continue_on,
                session=session,
                expires_at=expires_at,
                expires_in=expires_in,
                idempotency_key=idempotency_key,
            )
        )

    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return await asyncio.to_thread(self._port.enqueue, handler, *args, **kwargs)

    async def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        return await asyncio.to_thread(self._port.schedule, when, handler, *args, **kwargs)

    async def continue_with(
        self, parent: JobId, handler: Callable[..., object], /, *args: Any, **kwargs: Any
    ) -> JobId:
        return await asyncio.to_thread(self._port.continue_with, parent, handler, *args, **kwargs)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[AwaitingBatch]:
        scope = self._port.batch()
        batch = await asyncio.to_thread(scope.__enter__)
        try:
            yield AwaitingBatch(batch)
        except BaseException as exc:
            if not await asyncio.to_thread(scope.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await asyncio.to_thread(scope.__exit__, None, None, None)

    async def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        await asyncio.to_thread(
            self._port.add_or_update_recurring, recurring_id, cron, handler, *args, **kwargs
        )

    async def remove_recurring(self, recurring_id: str) -> bool:
        return await asyncio.to_thread(self._port.remove_recurring, recurring_id)

    async def trigger_recurring(self, recurring_id: str) -> JobId:
        return await asyncio.to_thread(self._port.trigger_recurring, recurring_id)

    async def pause_recurring(self, recurring_id: str) -> None:
        await asyncio.to_thread(self._port.pause_recurring, recurring_id)

    async def resume_recurring(self, recurring_id: str) -> None:
        await asyncio.to_thread(self._port.resume_recurring, recurring_id)

    async def delete(self, job_id: JobId) -> None:
        await asyncio.to_thread(self._port.delete, job_id)

    async def requeue(self, job_id: JobId) -> None:
        await asyncio.to_thread(self._port.requeue, job_id)

    async def get(self, job_id: JobId) -> JobView:
        return await asyncio.to_thread(self._port.get, job_id)

    async def wait(
        self,
        job_id: JobId,
        *,
        timeout: dt.timedelta | float | None = None,  # noqa: ASYNC109 (as the sync port's)
    ) -> JobView:
        return await asyncio.to_thread(self._port.wait, job_id, timeout=timeout)

    async def get_recurring(self, recurring_id: str) -> RecurringView:
        return await asyncio.to_thread(self._port.get_recurring, recurring_id)

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringView]:
        return await asyncio.to_thread(self._port.list_recurring, after=after, limit=limit)

    async def get_batch(self, batch_id: BatchId) -> BatchView:
        return await asyncio.to_thread(self._port.get_batch, batch_id)
