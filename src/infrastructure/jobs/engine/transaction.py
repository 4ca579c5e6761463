"""What a store provides to the lifecycle: one transaction's reads and writes, and no rules.

The lifecycle (`lifecycle.py`) decides every state a job moves to; a `Transaction` only locks,
reads and writes what it is told. Rows read "for update" stay locked until the transaction
ends; all of a transaction's writes commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Protocol
from uuid import UUID

from application.jobs import BatchId, ContinueOn, JobId, JobState, LogLine
from infrastructure.jobs.engine.model import Finish, Job, Move, Output, RecurringJob, Tick


class Transaction(Protocol):
    # --- jobs ----------------------------------------------------------------------------
    def lock_jobs(self, job_ids: Collection[JobId]) -> dict[JobId, Job]:
        """The jobs of these ids that exist, locked (waiting for other holders)."""

    def holder_of(self, unique_key: str) -> JobId | None:
        """The active job holding `unique_key`, if any."""

    def insert_jobs(self, jobs: Sequence[Job], now: dt.datetime) -> None:
        """Store new jobs as they are, each with its first transition (`job.reason`)."""

    def insert_unique(self, job: Job, now: dt.datetime) -> bool:
        """Store a new active job with a unique key, as `insert_jobs`; False (nothing stored)
        when an active job holds the key already."""

    def remember_request(
        self, key: str, fingerprint: str, job_id: JobId, now: dt.datetime
    ) -> tuple[JobId, str] | None:
        """Record that the call with this idempotency key made `job_id`; when the key is
        recorded already (also by a transaction committed meanwhile), record nothing and
        return that call's job and fingerprint."""

    def repoint_request(self, key: str, job_id: JobId) -> None:
        """Make a recorded idempotency key name another job."""

    def move(self, moves: Sequence[Move], now: dt.datetime, *, contested: bool = False) -> None:
        """Move jobs no worker writes to: their state, its time, the history; a claim they
        held is voided, and the unique key is held in active states only.

        Raises:
            UniqueKeyHeld: `contested` moves would take a unique key that another
                transaction's job took meanwhile (nothing moved, the transaction usable).
        """

    def awaiting_children(self, parent_ids: Collection[JobId]) -> list[Job]:
        """The `awaiting` continuations of these parents."""

    def batch_ids(self, job_ids: Collection[JobId]) -> set[BatchId]:
        """The batches these jobs belong to."""

    def due_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        """Up to `limit` scheduled jobs whose time has come, earliest first, locked (rows
        other transactions hold are skipped)."""

    def overdue_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        """Up to `limit` jobs not started (scheduled, awaiting, enqueued) whose `expires_at`
        is at or before `now`, locked (skipping)."""

    def expired_jobs(self, now: dt.datetime, limit: int) -> list[Job]:
        """Up to `limit` processing jobs whose lease ended before `now`, locked (skipping)."""

    # --- claims --------------------------------------------------------------------------
    def claim(
        self,
        queue: str,
        *,
        limit: int,
        now: dt.datetime,
        token: UUID,
        lease_until: dt.datetime,
        server_id: str,
    ) -> list[Job]:
        """Move up to `limit` of the queue's oldest enqueued jobs to `processing` under a
        lease with `token`, counting an attempt; return them as they are after. No history."""

    def extend(self, job_id: JobId, token: UUID, lease_until: dt.datetime, output: Output) -> bool:
        """Extend a claim and save the job's progress and log lines; False if the token is
        stale."""

    def write_finishes(self, results: Sequence[Finish], now: dt.datetime) -> set[JobId]:
        """Write the outcome of claimed jobs (state, run_at, queue, result, error, progress;
        the claim voided) whose token is current; return their ids. No history, no logs."""

    def unclaim(self, claims: Sequence[tuple[JobId, UUID]], now: dt.datetime) -> list[JobId]:
        """Move claimed jobs whose token is current back to `enqueued`, their claim voided
        and their attempt no longer counted; return their ids. No history."""

    def record(self, moves: Sequence[Move], now: dt.datetime) -> None:
        """Add transitions to the jobs' history (for writes that did not record them)."""

    def save_logs(self, lines: Sequence[tuple[JobId, LogLine]]) -> None: ...

    def wake_workers(self) -> None:
        """Jobs became enqueued: wake idle workers once the transaction commits."""

    # --- batches -------------------------------------------------------------------------
    def insert_batch(
        self,
        batch_id: BatchId,
        *,
        job_ids: Sequence[JobId],
        continuation: Job | None,
        now: dt.datetime,
    ) -> None:
        """Store a batch of these jobs (stored already) and its continuation (stored next)."""

    def lock_batch(self, batch_id: BatchId) -> tuple[JobId, ContinueOn] | None:
        """The batch's continuation and when it runs, the batch row locked; None (and nothing
        locked) when the batch has no continuation."""

    def batch_states(self, batch_id: BatchId, continuation_id: JobId | None) -> list[JobState]:
        """The states of the batch's jobs still stored, its continuation left out."""

    # --- recurring jobs ------------------------------------------------------------------
    def lock_recurring(self, recurring_id: str) -> RecurringJob | None: ...

    def insert_recurring(self, definition: RecurringJob) -> bool:
        """False (nothing stored) when the id exists already."""

    def update_recurring(self, definition: RecurringJob) -> None: ...

    def move_schedule(
        self,
        recurring_id: str,
        *,
        expected: dt.datetime | None,
        next_run_at: dt.datetime | None,
        last: Tick | None,
    ) -> bool:
        """Set the next run (and the last tick, when given) only if the stored next run is
        still `expected`; False otherwise."""

    def ticks_recorded(self, recurring_id: str, fire_times: Sequence[dt.datetime]) -> bool:
        """Whether the tick ledger holds any of these fire times."""

    def add_ticks(self, recurring_id: str, ticks: Sequence[Tick]) -> None:
        """Add the ticks to the ledger (a fire time already there fails the transaction)."""
