"""The synchronous job port: the async port run on an event loop of its own, in a thread.

Calls from any thread block on a future of that loop. None can deadlock: not one from a thread
whose own loop is running (an `async def` that calls it, or a worker thread of such a loop),
since the work never needs the caller's loop; only a call from the port's own loop thread
would wait on itself, and that is refused. The caller's context variables (its trace context,
its log context) go with each call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

from application.jobs import (
    Batch,
    BatchId,
    BatchView,
    ContinueOn,
    Cron,
    JobId,
    JobService,
    JobView,
    RecurringView,
    RetryPolicy,
)

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, started on first use and stopped by `close`."""

    def __init__(self, name: str = "jobs-sync-port") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the loop, in the caller's context, and return its result.

        Raises:
            RuntimeError: called from the loop's own thread (it would wait on itself).
        """
        loop = self._started()
        if threading.current_thread() is self._thread:
            work.close()
            raise RuntimeError("the synchronous job port was called from its own loop thread")
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        context = contextvars.copy_context()
        loop.call_soon_threadsafe(_start, loop, work, context, done)
        return done.result()

    def close(self) -> None:
        """Stop the loop and wait for its thread; a later `run` starts a new one."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, ready), name=self._name, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


def _start(
    loop: asyncio.AbstractEventLoop,
    work: Coroutine[Any, Any, T],
    context: contextvars.Context,
    done: concurrent.futures.Future[T],
) -> None:
    task = loop.create_task(work, context=context)

    def settle(finished: asyncio.Task[T]) -> None:
        if finished.cancelled():
            done.cancel()
        elif (error := finished.exception()) is not None:
            done.set_exception(error)
        else:
            done.set_result(finished.result())

    task.add_done_callback(settle)


class LoopThreadBatch:
    """`SyncBatch` over an async batch opened on the loop thread."""

    def __init__(self, batch: Batch, loop: LoopThread) -> None:
        self._batch = batch
        self._loop = loop

    @property
    def id(self) -> BatchId:
        return self._batch.id

    def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return self._loop.run(self._batch.enqueue(handler, *args, **kwargs))

    def then(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        async def then() -> JobId:
            return self._batch.then(handler, *args, **kwargs)

        return self._loop.run(then())


class LoopThreadJobService:
    """`SyncJobService` over a `JobService`, run on a `LoopThread`."""

    def __init__(self, jobs: JobService, loop: LoopThread | None = None) -> None:
        self._jobs = jobs
        self.loop = loop or LoopThread()

    def close(self) -> None:
        self.loop.close()

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
    ) -> LoopThreadJobService:
        configured = self._jobs.options(
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
        return LoopThreadJobService(configured, self.loop)

    def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return self.loop.run(self._jobs.enqueue(handler, *args, **kwargs))

    def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        return self.loop.run(self._jobs.schedule(when, handler, *args, **kwargs))

    def continue_with(
        self, parent: JobId, handler: Callable[..., object], /, *args: Any, **kwargs: Any
    ) -> JobId:
        return self.loop.run(self._jobs.continue_with(parent, handler, *args, **kwargs))

    @contextmanager
    def batch(self) -> Iterator[LoopThreadBatch]:
        scope: AbstractAsyncContextManager[Batch] = self._jobs.batch()
        batch = self.loop.run(scope.__aenter__())
        try:
            yield LoopThreadBatch(batch, self.loop)
        except BaseException as exc:
            if not self.loop.run(scope.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self.loop.run(scope.__aexit__(None, None, None))

    def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.loop.run(
            self._jobs.add_or_update_recurring(recurring_id, cron, handler, *args, **kwargs)
        )

    def remove_recurring(self, recurring_id: str) -> bool:
        return self.loop.run(self._jobs.remove_recurring(recurring_id))

    def trigger_recurring(self, recurring_id: str) -> JobId:
        return self.loop.run(self._jobs.trigger_recurring(recurring_id))

    def pause_recurring(self, recurring_id: str) -> None:
        self.loop.run(self._jobs.pause_recurring(recurring_id))

    def resume_recurring(self, recurring_id: str) -> None:
        self.loop.run(self._jobs.resume_recurring(recurring_id))

    def delete(self, job_id: JobId) -> None:
        self.loop.run(self._jobs.delete(job_id))

    def requeue(self, job_id: JobId) -> None:
        self.loop.run(self._jobs.requeue(job_id))

    def get(self, job_id: JobId) -> JobView:
        return self.loop.run(self._jobs.get(job_id))

    def wait(self, job_id: JobId, *, timeout: dt.timedelta | float | None = None) -> JobView:
        return self.loop.run(self._jobs.wait(job_id, timeout=timeout))

    def get_recurring(self, recurring_id: str) -> RecurringView:
        return self.loop.run(self._jobs.get_recurring(recurring_id))

    def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringView]:
        return self.loop.run(self._jobs.list_recurring(after=after, limit=limit))

    def get_batch(self, batch_id: BatchId) -> BatchView:
        return self.loop.run(self._jobs.get_batch(batch_id))
