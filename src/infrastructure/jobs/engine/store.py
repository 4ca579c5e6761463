"""The store port: what the engine needs from storage, in the engine's own verbs, split by
role so each engine component depends on the few methods it uses: the client writes
(`JobWriter`) and reads (`JobReader`), the worker claims (`JobClaims`), the scheduler keeps
the schedule (`JobSchedule`), the watchdog cleans up (`Housekeeping`). `JobStore` is all of
them; `storage.TransactionalStore` implements the lifecycle verbs once for every store.

Every method is atomic. Times come from the engine's clock as arguments; a store never reads
the time itself. Writes about a claimed job carry its lease token and are ignored once the
token is stale, so a worker that lost its lease cannot overwrite the next run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from application.jobs import (
    BatchId,
    BatchView,
    JobFilter,
    JobId,
    JobPulse,
    JobSort,
    JobState,
    JobSummary,
    JobView,
    MinuteCount,
)
from infrastructure.jobs.engine.model import (
    BulkMove,
    Claim,
    Elect,
    Finish,
    Job,
    NewBatch,
    Output,
    RecurringJob,
    ServerInfo,
    Tick,
    UnloadableRecurring,
    keep,
)
from infrastructure.jobs.signal import Broadcast

PURGED_STATES = frozenset({JobState.SUCCEEDED, JobState.DELETED})
"""What `purge_finished` deletes unless told otherwise."""


class JobWriter(Protocol):
    async def create(
        self,
        jobs: Sequence[Job],
        *,
        now: dt.datetime,
        batch: NewBatch | None = None,
        session: object | None = None,
    ) -> list[JobId]:
        """Store jobs (and their batch) all or none; return their ids in order.

        A job with a `parent_id` starts in the state `states.continuation_start` gives for
        its parent's current state. A job whose unique key is held by an active job is not
        stored: the active job's id is returned in its place.

        Raises:
            JobNotFound: a `parent_id` names no job.
        """

    async def change_state(
        self,
        job_id: JobId,
        to: JobState,
        *,
        now: dt.datetime,
        reason: str,
        unless: frozenset[JobState] = frozenset(),
        elect: Elect = keep,
    ) -> JobState:
        """Move a job that is not claimed-and-finishing to `to` (delete, requeue) and return
        the state it was in. Nothing changes when it is in `to` already or in `unless`.
        Moving a processing job voids its lease token. `elect` may change the move.

        Raises:
            JobNotFound: no job has this id.
            InvalidTransition: the move is not allowed from the job's state, or `elect`
                vetoed the move.
            UniqueKeyHeld: the job's unique key is held by another active job.
        """

    async def change_states(
        self,
        job_ids: Sequence[JobId],
        to: JobState,
        *,
        now: dt.datetime,
        reason: str,
        unless: frozenset[JobState] = frozenset(),
        elect: Elect = keep,
    ) -> BulkMove:
        """`change_state` for many jobs in one transaction; jobs that may not move (or are
        gone) are skipped. Returns the ids that moved, and each skipped job with why."""


class JobClaims(Protocol):
    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        """Claim up to `limit` enqueued jobs, queues in the given priority order, oldest first;
        each moves to `processing` with a new lease token and its attempt counted."""

    async def extend(
        self,
        tokens: Sequence[tuple[JobId, UUID, Output]],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> set[JobId]:
        """Extend the leases of running jobs and save their output; return the ids whose
        token is stale (deleted, rescued or released meanwhile)."""

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        """Move claimed jobs to their next state, releasing continuations and batch
        continuations that now may run; one bool per result, False for a stale token."""

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        """Hand claimed jobs back to the queue at once, without counting the attempt."""

    async def wait_for_work(self, max_seconds: float) -> None:
        """Return when jobs may have been enqueued since the last call, or after
        `max_seconds`; lets idle workers wake at once instead of polling."""

    async def heartbeat(self, server: ServerInfo) -> None: ...

    async def remove_server(self, server_id: str) -> None: ...


class JobReader(Protocol):
    async def get(self, job_id: JobId) -> JobView | None: ...

    @property
    def job_changes(self) -> Broadcast:
        """Notified after this process moved jobs (finished, deleted, requeued, rescued);
        moves made by other processes are seen only by reading again."""

    async def get_batch(self, batch_id: BatchId) -> BatchView | None: ...

    # --- reading many jobs (operators' lists and counts) ----------------------------------
    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort,
        limit: int,
        after: tuple[dt.datetime, JobId] | None = None,
    ) -> list[JobSummary]:
        """Up to `limit` matching jobs in `sort` order (ties broken by id in the same
        direction), starting after the row whose sort key and id are `after` (keyset)."""

    async def count_jobs(self, where: JobFilter) -> int: ...

    async def count_by_state(self) -> dict[JobState, int]:
        """Jobs per state; states without jobs may be missing."""

    async def finished_per_minute(
        self, *, since: dt.datetime, until: dt.datetime
    ) -> list[MinuteCount]:
        """Transitions to succeeded and failed recorded in [since, until), per UTC minute;
        minutes without any may be missing. `since` is on a minute boundary."""

    async def queue_lengths(self) -> dict[str, tuple[int, dt.datetime]]:
        """Per queue holding enqueued jobs: how many, and the `state_at` of the oldest."""

    async def running_by_server(self) -> dict[str, int]:
        """Processing jobs per server id (servers running none may be missing)."""

    async def enqueued_ahead(self, queue: str, *, before: dt.datetime) -> int:
        """Enqueued jobs of `queue` that a worker claims before one enqueued at `before`."""

    async def list_batches(self, limit: int) -> list[BatchView]:
        """The newest `limit` batches, newest first."""

    async def pulses(self, job_ids: Sequence[JobId]) -> dict[JobId, JobPulse]:
        """State, progress and number of log lines of each job that exists."""

    async def list_servers(self) -> list[ServerInfo]: ...


class JobSchedule(Protocol):
    async def enqueue_due(self, *, now: dt.datetime, limit: int) -> int:
        """Move scheduled jobs whose time has come to `enqueued`; return how many."""

    async def upsert_recurring(self, definition: RecurringJob) -> None:
        """Insert or replace by id; an unchanged schedule keeps the stored next run, and
        the paused flag is kept."""

    async def remove_recurring(self, recurring_id: str) -> bool:
        """Remove the definition and its tick ledger; False when the id is unknown."""

    async def set_recurring_paused(
        self, recurring_id: str, paused: bool, *, next_run_at: dt.datetime | None
    ) -> bool:
        """Pause or resume (with a new next run); False when the id is unknown."""

    async def get_recurring(self, recurring_id: str) -> RecurringJob | None: ...

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringJob]:
        """Ordered by id: those after the id `after`, at most `limit` (None: no bound)."""

    async def due_recurring(
        self, *, now: dt.datetime, limit: int
    ) -> list[RecurringJob | UnloadableRecurring]:
        """Unpaused recurring jobs whose next run is at or before `now`; a row that cannot be
        read comes back as `UnloadableRecurring` instead of failing the others."""

    async def record_ticks(
        self,
        recurring_id: str,
        *,
        expected_next_run: dt.datetime | None,
        next_run_at: dt.datetime | None,
        ticks: Sequence[Tick],
        now: dt.datetime,
    ) -> bool:
        """Create the ticks' jobs and move the schedule on, all or none.

        Compare-and-set: nothing happens and False is returned unless the stored next run
        still equals `expected_next_run` and no tick's fire time was recorded before (the
        tick ledger), so each tick becomes exactly one job across replicas.
        """


class Housekeeping(Protocol):
    async def expire_overdue(self, *, now: dt.datetime, limit: int) -> int:
        """Delete, with the reason "expired", up to `limit` jobs not yet started whose
        deadline (`expires_at`) is at or before `now`; return how many."""

    async def rescue_expired(self, *, now: dt.datetime, limit: int, elect: Elect = keep) -> int:
        """Requeue processing jobs whose lease expired (their attempt stays counted); a job
        with no attempts left moves to `failed` (or `deleted`, per its policy), unless
        `elect` moves it elsewhere."""

    async def remove_dead_servers(self, *, heartbeat_before: dt.datetime) -> list[str]: ...

    async def purge_finished(
        self,
        *,
        finished_before: dt.datetime,
        limit: int,
        states: frozenset[JobState] = PURGED_STATES,
    ) -> int:
        """Delete up to `limit` jobs in `states` (final ones) that reached their state before
        the cutoff, with their history and log lines."""

    async def purge_ticks(self, *, fired_before: dt.datetime, limit: int) -> int:
        """Delete up to `limit` rows of the tick ledger whose fire time is before the cutoff."""

    async def purge_batches(self, *, created_before: dt.datetime, limit: int) -> int:
        """Delete up to `limit` batches created before the cutoff none of whose jobs (nor
        its continuation) is stored any more."""


class JobStore(JobWriter, JobClaims, JobReader, JobSchedule, Housekeeping, Protocol):
    async def close(self) -> None:
        """Release what the store holds open (listeners); the store is unusable after."""


class ClientStore(JobWriter, JobReader, JobSchedule, Protocol):
    """What the `JobService` uses."""


class AdminStore(JobWriter, JobReader, JobSchedule, Protocol):
    """What the operators' `JobAdmin` uses."""
