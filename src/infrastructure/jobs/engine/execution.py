"""The execution core: build the handler through DI, give it a context, run it, time it out.

Shared by every adapter. A failing job is data (an `Outcome`), never an exception.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

from application.jobs import JobError, JSONValue, LogLine
from infrastructure.jobs.engine.model import Job, Output
from infrastructure.jobs.engine.stored_text import storable_result, stored_text
from infrastructure.jobs.handlers import HandlerRegistry

logger = logging.getLogger(__name__)
handler_logger = logging.getLogger("jobs.handlers")

T = TypeVar("T")

MAX_LOG_LINES = 1000
MAX_LEVEL_LENGTH = 10
"""A log line's level name is stored in at most this many characters."""


class HandlerFactory(Protocol):
    """Builds a handler instance for one execution (the DI container in the host)."""

    def __call__(self, cls: type[T], /, **context: Any) -> T: ...


def construct(cls: type[T], /, **context: Any) -> T:
    """The factory for handlers with no dependencies besides an optional context."""
    return cls(**context)


class _RedactingFilter(logging.Filter):
    """A job's log records as they are stored and logged: the message and any traceback
    redacted and made storable (`stored_text`), before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = stored_text(record.getMessage()), ()
        if record.exc_info:
            trace = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text, record.exc_info = stored_text(trace), None
        record.levelname = stored_text(record.levelname)[:MAX_LEVEL_LENGTH]
        return True


class _JobLogHandler(logging.Handler):
    def __init__(self, context: RunningContext) -> None:
        super().__init__(logging.DEBUG)
        self._context = context

    def emit(self, record: logging.LogRecord) -> None:
        self._context.add_log(record)


class RunningContext:
    """The `JobContext` of one execution; thread-safe, as sync handlers run in threads."""

    def __init__(self, job: Job, now: Callable[[], dt.datetime]) -> None:
        self._job = job
        self._now = now
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._progress: float | None = None
        self._logs: list[LogLine] = []
        self._logged = 0

    @functools.cached_property
    def logger(self) -> logging.Logger:
        """Built on first use: most handlers never log."""
        job_logger = logging.Logger(f"jobs.handlers.{self._job.handler}", logging.INFO)
        job_logger.parent = handler_logger
        job_logger.addFilter(_RedactingFilter())
        job_logger.addHandler(_JobLogHandler(self))
        return job_logger

    @property
    def job_id(self) -> UUID:
        return self._job.id

    @property
    def attempt(self) -> int:
        return self._job.attempt

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def report_progress(self, percent: float) -> None:
        with self._lock:
            self._progress = max(0.0, min(100.0, float(percent)))

    def add_log(self, record: logging.LogRecord) -> None:
        message = stored_text(record.getMessage())
        level = stored_text(record.levelname)[:MAX_LEVEL_LENGTH]
        line = LogLine(at=self._now(), level=level, message=message)
        with self._lock:
            if self._logged < MAX_LOG_LINES:
                self._logs.append(line)
                self._logged += 1

    def take_output(self) -> Output:
        """Progress and the log lines not yet taken."""
        with self._lock:
            logs, self._logs = tuple(self._logs), []
            return Output(progress=self._progress, logs=logs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How an execution ended: a result, or an error."""

    result: JSONValue = None
    error: JobError | None = None
    exception: BaseException | None = None
    """What the handler raised (`error` is its record)."""


def error_of(exc: BaseException) -> JobError:
    """The record of what a handler raised, its text redacted and made storable."""
    return JobError(
        type=stored_text(f"{type(exc).__module__}.{type(exc).__qualname__}"),
        message=stored_text(str(exc)),
        traceback=stored_text("".join(traceback.format_exception(exc))),
    )


class Executor:
    """Runs one job: resolve the handler on the allow-list, build it, call it."""

    def __init__(
        self,
        registry: HandlerRegistry,
        factory: HandlerFactory = construct,
        *,
        threads: int = 8,
    ) -> None:
        self._registry = registry
        self._factory = factory
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="job")

    def shutdown(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def execute(self, job: Job, context: RunningContext) -> Outcome:
        """Run the job's handler. Cancellation of the calling task propagates."""
        try:
            definition = self._registry.get(job.handler)
            extra = {definition.context_parameter: context} if definition.context_parameter else {}
            instance: object = self._factory(definition.cls, **extra)
            args, kwargs = definition.decode(job.args, job.kwargs)
            method = getattr(instance, definition.method)
            limit = job.timeout or definition.options.timeout
            result = await self._call(method, args, kwargs, definition.is_async, limit, context)
            # a result that cannot be stored (cyclic, too deep, NaN) fails the job like a raise
            stored = storable_result(result)
        except asyncio.CancelledError:
            context.cancel()
            raise
        except Exception as exc:
            error = error_of(exc)
            logger.debug("job %s raised %s: %s", job.id, error.type, error.message)
            return Outcome(error=error, exception=exc)
        return Outcome(result=stored)

    async def _call(
        self,
        method: Callable[..., Any],
        args: list[object],
        kwargs: dict[str, object],
        is_async: bool,
        limit: dt.timedelta | None,
        context: RunningContext,
    ) -> object:
        seconds = limit.total_seconds() if limit else None
        try:
            async with asyncio.timeout(seconds) as scope:
                if is_async:
                    return await method(*args, **kwargs)
                call = functools.partial(contextvars.copy_context().run, method, *args, **kwargs)
                return await asyncio.get_running_loop().run_in_executor(self._threads, call)
        except TimeoutError:
            if not scope.expired():
                raise
            context.cancel()
            raise JobTimedOut(f"job timed out after {seconds:g} s") from None


class JobTimedOut(TimeoutError):
    """The handler ran past its timeout and was cancelled."""
