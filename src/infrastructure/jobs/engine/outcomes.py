"""Recording the outcomes of finished executions: in batches, kept (their leases extended by
the worker's heartbeat) and tried again while the store does not take them, and split when
it refuses one, so one outcome it cannot hold never holds back the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from application.jobs import JobId
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.model import Claim, Finish, Output
from infrastructure.jobs.engine.store import JobClaims
from infrastructure.jobs.engine.stored_text import stored_text

logger = logging.getLogger(__name__)

RETRY_FIRST_DELAY = 0.2
"""Seconds before outcomes that could not be recorded are tried again; the delay doubles
with each failure, up to the recorder's `max_delay` (the worker's heartbeat interval)."""

REFUSALS_BEFORE_POISON = 2
"""An outcome the store refuses this often, alone while it accepts other writes, is replaced
by a bare failure (its result, error text and log lines left out)."""


class OutcomeNotStored(RuntimeError):
    """The store kept refusing a job's outcome (its text, result or log lines)."""


@dataclass(slots=True)
class _Outcome:
    """A finished execution's outcome, until the store has recorded it."""

    claim: Claim
    finish: Finish
    refusals: int = 0
    """Times the store refused this outcome alone while it accepted other writes."""
    bare: bool = False
    """A failure recorded in place of an outcome the store refused."""

    @property
    def handler(self) -> str:
        return self.claim.job.handler


class OutcomeRecorder:
    def __init__(
        self,
        store: JobClaims,
        *,
        probe: Callable[[], Awaitable[None]],
        fail: Callable[[Claim, BaseException, Output], Finish],
        clock: Clock,
        max_delay: float,
    ) -> None:
        """`probe` is a plain write that shows whether the store answers (a heartbeat);
        `fail` makes the failed outcome recorded in place of one the store refuses."""
        self._store = store
        self._probe = probe
        self._fail = fail
        self._clock = clock
        self._max_delay = max_delay
        self._outbox: list[_Outcome] = []
        self._unrecorded: list[_Outcome] = []
        self._retry_delay = RETRY_FIRST_DELAY
        self._outbox_filled = asyncio.Event()

    def add(self, claim: Claim, finish: Finish) -> None:
        self._outbox.append(_Outcome(claim, finish))
        self._outbox_filled.set()

    def leases(self) -> list[tuple[JobId, UUID, Output]]:
        """The claims of outcomes kept unrecorded, whose leases the heartbeat extends."""
        return [(o.claim.job.id, o.claim.token, Output()) for o in self._unrecorded]

    def forget(self, lost: set[JobId]) -> None:
        """Drop kept outcomes whose lease was lost (the job deleted or run elsewhere)."""
        for outcome in [o for o in self._unrecorded if o.claim.job.id in lost]:
            self._unrecorded.remove(outcome)
            log_outcome(outcome.finish, outcome.handler, recorded=False)

    def report_unrecorded(self) -> None:
        """On stop: say what is lost with this process."""
        if self._unrecorded:
            logger.error(
                "stopping with %d outcome(s) the store did not take; their jobs run again "
                "once their leases expire",
                len(self._unrecorded),
                extra={"action": "outcomes_unrecorded"},
            )

    async def flush_continuously(self) -> None:
        """Record finished jobs in batches: whatever finished while the last write ran; while
        some could not be recorded, try again after a growing delay."""
        while True:
            if self._unrecorded:
                await asyncio.sleep(self._retry_delay)
            else:
                await self._outbox_filled.wait()
            self._outbox_filled.clear()
            await self.flush()

    async def flush(self) -> None:
        """Record what waits, the outcomes kept from earlier first."""
        batch = self._unrecorded + self._outbox
        self._unrecorded, self._outbox = [], []
        if not batch:
            return
        kept = await self._record(batch)
        self._unrecorded += kept
        if kept:
            self._retry_delay = min(self._retry_delay * 2, self._max_delay)
        else:
            self._retry_delay = RETRY_FIRST_DELAY

    async def _record(self, batch: list[_Outcome]) -> list[_Outcome]:
        """Record outcomes; return those that could not be recorded (kept, to try again)."""
        try:
            recorded = await self._store.finish([o.finish for o in batch], now=self._clock.now())
        except Exception as exc:
            return await self._isolate(batch, exc)
        for outcome, done in zip(batch, recorded, strict=True):
            log_outcome(outcome.finish, outcome.handler, done)
        return []

    async def _isolate(self, batch: list[_Outcome], error: Exception) -> list[_Outcome]:
        """After a failed write: while the store is down, keep the batch; when it answers,
        split the batch, so one outcome it refuses (a poison) cannot hold back the others."""
        if not await self._store_answers():
            logger.warning(
                "recording %d finished job(s) failed (%s); kept and retried while their "
                "leases are extended",
                len(batch),
                _brief(error),
                extra={"action": "outcomes_kept"},
            )
            return batch
        if len(batch) > 1:
            half = len(batch) // 2
            return await self._record(batch[:half]) + await self._record(batch[half:])
        return await self._refused(batch[0], error)

    async def _refused(self, outcome: _Outcome, error: Exception) -> list[_Outcome]:
        """The store answers but refuses this one outcome: try again later, then record it
        as a bare failure (no result, error text or log lines, which may be what it refuses)."""
        outcome.refusals += 1
        job = outcome.claim.job
        logger.error(
            "the store refused the outcome of job %s %s (%d time(s)): %s",
            job.id,
            job.handler,
            outcome.refusals,
            _brief(error),
            extra={"action": "outcome_refused", "job_id": str(job.id), "handler": job.handler},
        )
        if outcome.bare:  # not even a bare failure: let the lease lapse, the rescue decides
            logger.error(
                "dropping the outcome of job %s; it is rescued once its lease expires",
                job.id,
                extra={"action": "outcome_dropped", "job_id": str(job.id)},
            )
            return []
        if outcome.refusals < REFUSALS_BEFORE_POISON:
            return [outcome]
        unstored = OutcomeNotStored(f"the outcome could not be stored: {type(error).__name__}")
        output = Output(progress=outcome.finish.output.progress)
        bare = self._fail(outcome.claim, unstored, output)
        return await self._record([_Outcome(outcome.claim, bare, outcome.refusals, bare=True)])

    async def _store_answers(self) -> bool:
        """Whether the store accepts a plain write now."""
        try:
            await self._probe()
        except Exception:
            return False
        return True


def _brief(error: Exception) -> str:
    """The error's first line only: a database error goes on with the statement and its
    parameters (job payloads, handler text), which do not belong in the log."""
    lines = str(error).splitlines()
    return stored_text(f"{type(error).__name__}: {lines[0] if lines else ''}")


def log_outcome(finish: Finish, handler: str, recorded: bool) -> None:
    if not recorded:
        logger.warning(
            "job %s %s finished but its lease was lost; outcome discarded",
            finish.job_id,
            handler,
            extra={"action": "lease_lost", "job_id": str(finish.job_id), "handler": handler},
        )
