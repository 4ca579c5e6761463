"""The worker: claims jobs from its queues, runs them, keeps their leases and records outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from application.jobs import JobId, JobState
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.execution import Executor, Outcome, RunningContext, error_of
from infrastructure.jobs.engine.middleware import Middlewares, StateChange
from infrastructure.jobs.engine.model import Claim, Finish, Output, ServerInfo
from infrastructure.jobs.engine.outcomes import OutcomeRecorder
from infrastructure.jobs.engine.queues import QueueOrder
from infrastructure.jobs.engine.states import EXPIRED, after_failure
from infrastructure.jobs.engine.store import JobClaims

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """Attributes:
    queues: served in this priority order, unless weighted.
    queue_weights: when given, each claim looks first at a queue chosen by these weights
        (`queues.QueueOrder`) instead of always at the first: a queue left out weighs 1.
    concurrency: jobs run at once.
    lease: how long a claim holds without a heartbeat; a crashed worker's jobs run again
        after it expires.
    heartbeat_interval: seconds between lease extensions (also how soon a deleted running
        job is cancelled).
    poll_interval: longest wait between claims while the queues stay empty; the wait starts
        at `min_poll_interval` after work was found and doubles with each empty claim.
    min_poll_interval: the shortest such wait.
    grace: on stop, how long running jobs may take to finish before they are released.
    """

    queues: tuple[str, ...] = ("default",)
    queue_weights: Mapping[str, int] = field(default_factory=dict)
    concurrency: int = 4
    lease: dt.timedelta = dt.timedelta(seconds=30)
    heartbeat_interval: float = 5.0
    poll_interval: float = 0.5
    min_poll_interval: float = 0.02
    grace: dt.timedelta = dt.timedelta(seconds=10)


@dataclass(slots=True)
class _Running:
    claim: Claim
    context: RunningContext
    task: asyncio.Task[None] | None = None
    abandoned: bool = field(default=False)


class Worker:
    def __init__(
        self,
        store: JobClaims,
        executor: Executor,
        clock: Clock,
        *,
        server_id: str,
        settings: WorkerSettings | None = None,
        rng: random.Random | None = None,
        middleware: Middlewares | None = None,
    ) -> None:
        self._store = store
        self._middleware = middleware or Middlewares()
        self._executor = executor
        self._clock = clock
        self._server_id = server_id
        self.settings = settings or WorkerSettings()
        self._rng = rng or random.Random()
        self._running: dict[JobId, _Running] = {}
        self._outcomes = OutcomeRecorder(
            store,
            probe=lambda: store.heartbeat(self._server_info(clock.now())),
            fail=self._failure_of,
            clock=clock,
            max_delay=self.settings.heartbeat_interval,
        )
        self._poll = self.settings.poll_interval
        self._queue_order = QueueOrder(self.settings.queues, self.settings.queue_weights)
        self._started_at = clock.now()

    @property
    def running(self) -> int:
        return len(self._running)

    async def run_once(self) -> int:
        """Claim as many jobs as there are free slots, run them to the end and record their
        outcomes; return how many."""
        claims = await self._claim(self.settings.concurrency - len(self._running))
        ended = await asyncio.gather(*(self._process(c) for c in claims), return_exceptions=True)
        await self._outcomes.flush()  # the others' outcomes, even if one execution raised
        for error in ended:
            if isinstance(error, BaseException):
                raise error
        return len(claims)

    async def heartbeat(self) -> None:
        """Extend the leases of running jobs and save their output; cancel the jobs whose
        lease is gone (deleted, or rescued elsewhere)."""
        now = self._clock.now()
        await self._store.heartbeat(self._server_info(now))
        running = list(self._running.values())
        unrecorded = self._outcomes.leases()  # kept leased until their outcome is recorded
        if not running and not unrecorded:
            return
        lost = await self._store.extend(
            [(r.claim.job.id, r.claim.token, r.context.take_output()) for r in running]
            + unrecorded,
            now=now,
            lease=self.settings.lease,
        )
        for job_id in lost:
            self._abandon(job_id, "lease lost (deleted or rescued)")
        self._outcomes.forget(lost)

    def _server_info(self, now: dt.datetime) -> ServerInfo:
        return ServerInfo(
            id=self._server_id,
            queues=self.settings.queues,
            concurrency=self.settings.concurrency,
            started_at=self._started_at,
            heartbeat_at=now,
        )

    async def run(self, stopping: asyncio.Event) -> None:
        """Work until `stopping` is set, then stop gracefully: no new claims, running jobs get
        `grace` to finish, the rest are cancelled and handed back to the queue at once."""
        tasks: set[asyncio.Task[None]] = set()
        await self._heartbeat_safely()  # the server is listed before it claims anything
        beating = asyncio.create_task(self._beat())
        flushing = asyncio.create_task(self._outcomes.flush_continuously())
        stop_waiter = asyncio.create_task(stopping.wait())
        try:
            while not stopping.is_set():
                free = self.settings.concurrency - len(tasks)
                claims = []
                if self._worth_claiming(free):
                    claims = await self._claim_safely(free)
                    self._adapt_poll(found_work=bool(claims))
                tasks |= {asyncio.create_task(self._process(claim)) for claim in claims}
                await self._wait(tasks, stop_waiter, idle=len(claims) < free)
                tasks = {t for t in tasks if not t.done()}
            await self._drain(tasks)
        finally:
            stop_waiter.cancel()
            for task in (beating, flushing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._outcomes.flush()
            self._outcomes.report_unrecorded()
            with contextlib.suppress(Exception):
                await self._store.remove_server(self._server_id)

    def _adapt_poll(self, *, found_work: bool) -> None:
        """Poll often while work keeps coming, back off while the queues stay empty."""
        if found_work:
            self._poll = self.settings.min_poll_interval
        else:
            self._poll = min(self.settings.poll_interval, self._poll * 2)

    def _worth_claiming(self, free: int) -> bool:
        """Claim in batches: when half the slots are free, or when nothing runs."""
        return free > 0 and (free * 2 >= self.settings.concurrency or not self._running)

    async def _wait(
        self, tasks: set[asyncio.Task[None]], stop_waiter: asyncio.Task[bool], *, idle: bool
    ) -> None:
        """Until a job finishes or stop is asked; when the queues looked empty, also until
        new work may be there (a notification, or the poll interval)."""
        waiting: set[asyncio.Future[Any]] = {*tasks, stop_waiter}
        work = None
        if idle:
            work = asyncio.create_task(self._store.wait_for_work(self._poll))
            waiting.add(work)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if work is not None and not work.done():
            work.cancel()

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        if tasks:
            logger.info("stopping: waiting for %d running job(s)", len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=self.settings.grace.total_seconds())
            await self._outcomes.flush()
            if pending:
                await self._release_unfinished(pending)

    async def _release_unfinished(self, pending: set[asyncio.Task[None]]) -> None:
        unfinished = list(self._running.values())
        for running in unfinished:
            self._abandon(running.claim.job.id, "server stopping")
        await asyncio.wait(pending, timeout=1.0)
        await self._store.release(
            [(r.claim.job.id, r.claim.token) for r in unfinished],
            now=self._clock.now(),
            reason="released: server stopping",
        )
        logger.warning(
            "released %d unfinished job(s) on stop",
            len(unfinished),
            extra={"action": "jobs_released"},
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            await self._heartbeat_safely()

    async def _heartbeat_safely(self) -> None:
        try:
            await self.heartbeat()
        except Exception:
            logger.exception("heartbeat failed", extra={"action": "heartbeat_failed"})

    async def _claim_safely(self, limit: int) -> list[Claim]:
        try:
            return await self._claim(limit)
        except Exception:
            logger.exception("claiming jobs failed", extra={"action": "claim_failed"})
            await asyncio.sleep(self.settings.poll_interval)
            return []

    async def _claim(self, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        return await self._store.acquire(
            self._queue_order.next(),
            now=self._clock.now(),
            lease=self.settings.lease,
            limit=limit,
            server_id=self._server_id,
        )

    def _abandon(self, job_id: JobId, why: str) -> None:
        running = self._running.get(job_id)
        if running is None:
            return
        running.abandoned = True
        running.context.cancel()
        if running.task is not None:
            running.task.cancel()
        logger.info(
            "job %s cancelled: %s",
            job_id,
            why,
            extra={"action": "job_cancelled", "job_id": str(job_id)},
        )

    async def _process(self, claim: Claim) -> None:
        job = claim.job
        if job.expired(self._clock.now()):  # claimed after its deadline: never run late
            self._outcomes.add(claim, expired_finish(claim))
            return
        running = _Running(claim, RunningContext(job, self._clock.now), asyncio.current_task())
        self._running[job.id] = running
        self._middleware.before_perform(job, now=self._clock.now())
        outcome = Outcome()
        try:
            outcome = await self._executor.execute(job, running.context)
        except asyncio.CancelledError as exc:
            outcome = Outcome(exception=exc)
            if not running.abandoned:
                raise
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            return  # deleted, rescued or released: the store already moved it on
        finally:
            del self._running[job.id]
            self._middleware.after_perform(job, result=outcome.result, error=outcome.exception)
        if not running.abandoned:
            finish = self._finish_of(claim, outcome, running.context.take_output())
            self._outcomes.add(claim, finish)

    def _failure_of(self, claim: Claim, error: BaseException, output: Output) -> Finish:
        """A failed outcome in place of one the store refused."""
        return self._finish_of(claim, Outcome(error=error_of(error), exception=error), output)

    def _finish_of(self, claim: Claim, outcome: Outcome, output: Output) -> Finish:
        """The outcome as the middleware elects it, to be recorded."""
        job = claim.job
        if outcome.error is None:
            candidate = StateChange(JobState.SUCCEEDED, "succeeded")
        else:
            state, run_at, reason = after_failure(
                job.retry, job.attempt, self._clock.now(), self._rng, outcome.exception
            )
            candidate = StateChange(state, reason, run_at=run_at, error=outcome.error)
        change = self._middleware.elect_state(job, candidate)
        if change.state is JobState.PROCESSING:  # no veto here: the execution is over
            change = candidate
        return Finish(
            job_id=job.id,
            token=claim.token,
            state=change.state,
            reason=change.reason,
            run_at=change.run_at,
            queue=change.queue,
            error=change.error,
            result=outcome.result if change.state is JobState.SUCCEEDED else None,
            output=output,
            batch_id=job.batch_id,
        )


def expired_finish(claim: Claim) -> Finish:
    """The outcome of a job claimed after its deadline: deleted, without running."""
    return Finish(
        job_id=claim.job.id,
        token=claim.token,
        state=JobState.DELETED,
        reason=EXPIRED,
        batch_id=claim.job.batch_id,
    )
