"""Job middleware: hooks around the life of jobs, in the spirit of dramatiq's middleware and
Hangfire's filters. Our own logs, metrics and traces are middleware too (`telemetry.py`).

Subclass `JobMiddleware`, override the hooks you need, and register an instance in the
container (`Container.middleware`). Hooks run in the order of registration (`after_*` hooks in
the reverse order, so the first middleware wraps the others). A hook that raises is logged and
left out; the job goes on as if it were not there.

    class Audit(JobMiddleware):
        def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None):
            audit.info("%s ran: %s", job.handler, "ok" if error is None else error)

        def elect_state(self, job: Job, change: StateChange) -> StateChange:
            # after the last retry, park the job on a dead-letter queue instead of failing it
            if change.state is JobState.FAILED:
                return StateChange(JobState.ENQUEUED, "dead-lettered", queue="dead-letter")
            return change
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from application.jobs import JobError, JobState, JSONValue
from infrastructure.jobs.engine import states
from infrastructure.jobs.engine.model import Job, Move

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Enqueue:
    """New jobs being stored by one call: `enqueue`, `schedule`, `continue`, `batch`,
    `trigger` or a recurring `tick`."""

    operation: str
    jobs: list[Job]
    """`before_enqueue` may replace them (same ids), e.g. to add a trace context."""
    fire_times: Sequence[dt.datetime] = ()
    """For ticks: each job's fire time."""
    created: list[bool] = field(default_factory=list)
    """After the write: per job, whether it was stored (False: an active job holding its
    unique key stands in for it)."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """The state an execution moves its job to, as `elect_state` sees and may change it."""

    state: JobState
    reason: str
    run_at: dt.datetime | None = None
    """When a `scheduled` job (a retry) runs."""
    queue: str | None = None
    """Moves the job to this queue."""
    error: JobError | None = None


class JobMiddleware:
    """No-op hooks; override the ones you need."""

    def before_enqueue(self, enqueue: Enqueue) -> None:
        """Before new jobs are stored."""

    def after_enqueue(self, enqueue: Enqueue, *, error: BaseException | None) -> None:
        """After new jobs were stored (`enqueue.created`), or the write failed (`error`)."""

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        """A worker claimed the job at `now` and is about to run its handler."""

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        """The handler returned `result`, or raised `error` (`asyncio.CancelledError` when
        the job was cancelled: deleted, timed out elsewhere or released on shutdown)."""

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        """The state the job moves to: after an execution (succeeded, scheduled for a retry,
        failed or deleted), when its worker vanished (rescue), or when an operator deletes
        or requeues it. Return `change`, or another: a state the job may move to from
        `job.state`, or `job.state` itself to veto an operator's move. It may run in a
        worker thread, inside a transaction: keep it a quick decision."""
        return change


class Middlewares:
    """Runs the registered middleware's hooks, containing their failures. Only the middleware
    that override a hook are called for it (the hot path stays short)."""

    def __init__(self, middleware: Sequence[JobMiddleware] = ()) -> None:
        self._middleware = tuple(middleware)

    async def enqueuing(
        self, enqueue: Enqueue, write: Callable[[list[Job]], Awaitable[list[bool]]]
    ) -> None:
        """Run the enqueue hooks around `write`, which stores the jobs and says, per job,
        whether it was stored."""
        self._run("before_enqueue", enqueue)
        try:
            enqueue.created = await write(enqueue.jobs)
        except BaseException as exc:
            self._run("after_enqueue", enqueue, error=exc)
            raise
        self._run("after_enqueue", enqueue, error=None)

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        self._run("before_perform", job, now=now)

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        self._run("after_perform", job, result=result, error=error)

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        for item in self._overriding("elect_state"):
            try:
                elected = item.elect_state(job, change)
                if elected.state is not job.state:  # else a veto: the job stays
                    states.check_transition(job.id, job.state, elected.state)
            except Exception:
                logger.exception(
                    "middleware %s failed in elect_state; its choice is ignored",
                    type(item).__name__,
                    extra={"action": "middleware_failed"},
                )
                continue
            change = elected
        return change

    def elect_move(self, job: Job, move: Move) -> Move:
        """`elect_state` for a move of a job no worker holds (delete, requeue, rescue)."""
        if not self._overriding("elect_state"):
            return move
        change = self.elect_state(job, StateChange(move.to, move.reason))
        if (change.state, change.reason) == (move.to, move.reason):
            return move
        return Move(move.job_id, change.state, change.reason, move.data)

    def _run(self, hook: str, *args: object, **kwargs: object) -> None:
        for item in self._in_order(hook):
            try:
                getattr(item, hook)(*args, **kwargs)
            except Exception:
                logger.exception(
                    "middleware %s failed in %s",
                    type(item).__name__,
                    hook,
                    extra={"action": "middleware_failed"},
                )

    @functools.cache  # noqa: B019 (one instance per container, as long-lived as its middleware)
    def _in_order(self, hook: str) -> tuple[JobMiddleware, ...]:
        """`before_*` hooks in order, `after_*` hooks in the reverse order."""
        items = self._overriding(hook)
        return items[::-1] if hook.startswith("after_") else items

    @functools.cache  # noqa: B019 (one instance per container, as long-lived as its middleware)
    def _overriding(self, hook: str) -> tuple[JobMiddleware, ...]:
        default = getattr(JobMiddleware, hook)
        return tuple(m for m in self._middleware if getattr(type(m), hook) is not default)
