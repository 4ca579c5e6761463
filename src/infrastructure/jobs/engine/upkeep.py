"""The lifecycle's verbs driven by time, each inside one store `Transaction`: scheduled jobs
come due, deadlines pass, lost workers' leases expire, and recurring schedules tick."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from application.jobs import JobState
from infrastructure.jobs.engine import lifecycle, states
from infrastructure.jobs.engine.model import Elect, Job, Move, RecurringJob, Tick, keep
from infrastructure.jobs.engine.transaction import Transaction


# --- jobs whose time came ---------------------------------------------------------------------
def enqueue_due(tx: Transaction, now: dt.datetime, limit: int) -> int:
    due = tx.due_jobs(now, limit)
    lifecycle.apply(tx, [Move(job_id, JobState.ENQUEUED, "due") for job_id in due], now)
    return len(due)


def expire_overdue(tx: Transaction, now: dt.datetime, limit: int) -> int:
    """Delete jobs whose deadline passed before they started; return how many."""
    overdue = tx.overdue_jobs(now, limit)
    lifecycle.apply(tx, [Move(job_id, JobState.DELETED, states.EXPIRED) for job_id in overdue], now)
    return len(overdue)


def rescue_expired(tx: Transaction, now: dt.datetime, limit: int, elect: Elect = keep) -> int:
    expired = tx.expired_jobs(now, limit)
    moves = [_rescue(job, elect) for job in expired]
    lifecycle.apply(tx, moves, now)
    return len(expired)


def _rescue(job: Job, elect: Elect) -> Move:
    """Where a job whose worker vanished goes: by its retry policy, unless elected otherwise
    (a rescue cannot be vetoed: the job must leave `processing`)."""
    move = Move(job.id, *states.after_lease_expired(job.retry, job.attempt))
    elected = elect(job, move)
    allowed = elected.to in states.ALLOWED[JobState.PROCESSING]
    return elected if allowed and elected.to is not JobState.PROCESSING else move


# --- recurring jobs ---------------------------------------------------------------------------
def upsert_recurring(tx: Transaction, definition: RecurringJob) -> None:
    """Insert or replace by id; an unchanged schedule keeps its next run, a paused job stays
    paused, and the last tick is kept."""
    stored = tx.lock_recurring(definition.id)
    if stored is None:
        if tx.insert_recurring(definition):
            return
        stored = tx.lock_recurring(definition.id)  # another replica inserted it first
        assert stored is not None
    next_run = stored.next_run_at if stored.same_schedule(definition) else definition.next_run_at
    merged = dataclasses.replace(
        definition,
        paused=stored.paused,
        next_run_at=None if stored.paused else next_run,
        last_run_at=stored.last_run_at,
        last_job_id=stored.last_job_id,
    )
    tx.update_recurring(merged)


def record_ticks(
    tx: Transaction,
    recurring_id: str,
    *,
    expected_next_run: dt.datetime | None,
    next_run_at: dt.datetime | None,
    ticks: Sequence[Tick],
    now: dt.datetime,
) -> bool:
    """Create the ticks' jobs and move the schedule on, unless another replica did: the
    stored next run must still be the expected one (compare-and-set) and no tick may be in
    the ledger already."""
    if tx.ticks_recorded(recurring_id, [tick.fire_at for tick in ticks]):
        return False
    moved = tx.move_schedule(
        recurring_id,
        expected=expected_next_run,
        next_run_at=next_run_at,
        last=ticks[-1] if ticks else None,
    )
    if not moved:
        return False
    tx.add_ticks(recurring_id, ticks)
    lifecycle.create(tx, [tick.job for tick in ticks], now, None)
    return True
