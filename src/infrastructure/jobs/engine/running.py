"""The lifecycle of running (claimed) jobs, for every store: claiming, extending a lease,
recording an outcome and releasing. What an outcome lets run next is `lifecycle.after_final`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from uuid import UUID, uuid4

from application.jobs import JobId, JobState, JSONValue
from infrastructure.jobs.engine.lifecycle import after_final
from infrastructure.jobs.engine.model import Claim, Finish, Job, Move, Output
from infrastructure.jobs.engine.stored_text import shortened
from infrastructure.jobs.engine.transaction import Transaction


def acquire(
    tx: Transaction,
    queues: Sequence[str],
    now: dt.datetime,
    *,
    lease: dt.timedelta,
    limit: int,
    server_id: str,
) -> list[Claim]:
    """Claim up to `limit` jobs, queues in priority order, oldest first."""
    token, lease_until, claimed = uuid4(), now + lease, list[Job]()
    for queue in queues:
        if len(claimed) >= limit:
            break
        claimed += tx.claim(
            queue,
            limit=limit - len(claimed),
            now=now,
            token=token,
            lease_until=lease_until,
            server_id=server_id,
        )
    tx.record([claimed_move(job, server_id) for job in claimed], now)
    return [Claim(job=job, token=token, lease_until=lease_until) for job in claimed]


def claimed_move(job: Job, server_id: str) -> Move:
    """The transition a claim records."""
    data: dict[str, JSONValue] = {"server_id": server_id, "attempt": job.attempt}
    return Move(job.id, JobState.PROCESSING, f"claimed by {server_id}", data)


def extend(
    tx: Transaction,
    tokens: Sequence[tuple[JobId, UUID, Output]],
    now: dt.datetime,
    lease: dt.timedelta,
) -> set[JobId]:
    lost = set()
    for job_id, token, output in tokens:
        if tx.extend(job_id, token, now + lease, output):
            tx.save_logs([(job_id, line) for line in output.logs])
        else:
            lost.add(job_id)
    return lost


def finish(tx: Transaction, results: Sequence[Finish], now: dt.datetime) -> list[bool]:
    """Record outcomes of claimed jobs; False for a stale token."""
    recorded = tx.write_finishes(results, now)
    done = [result for result in results if result.job_id in recorded]
    tx.save_logs([(r.job_id, line) for r in done for line in r.output.logs])
    tx.record([Move(r.job_id, r.state, r.reason, finish_data(r)) for r in done], now)
    if any(r.state is JobState.ENQUEUED for r in done):
        tx.wake_workers()
    final = [r for r in done if r.state.is_final]
    after_final(
        tx,
        [Move(r.job_id, r.state, r.reason) for r in final],
        now,
        batch_ids={r.batch_id for r in final if r.batch_id is not None},
    )
    return [result.job_id in recorded for result in results]


HISTORY_MESSAGE_CHARS = 2_000
HISTORY_TRACEBACK_CHARS = 3_000
"""An error in the history is kept this short: its JSON must fit a text column even with
every character escaped (12 bytes at most); the job keeps the last error at full length."""


def finish_data(result: Finish) -> dict[str, JSONValue] | None:
    """The history data of an outcome: the error with its traceback (each failed attempt
    keeps its own), and when a retry runs."""
    data: dict[str, JSONValue] = {}
    if result.error is not None:
        error = result.error
        data.update(
            exception_type=error.type,
            message=shortened(error.message, HISTORY_MESSAGE_CHARS),
            traceback=shortened(error.traceback, HISTORY_TRACEBACK_CHARS),
        )
    if result.run_at is not None:
        data["run_at"] = result.run_at.isoformat()
    if result.queue is not None:
        data["queue"] = result.queue
    return data or None


def release(
    tx: Transaction, claims: Sequence[tuple[JobId, UUID]], now: dt.datetime, reason: str
) -> None:
    """Hand claimed jobs back to their queue, their attempt not counted."""
    released = tx.unclaim(claims, now)
    tx.record([Move(job_id, JobState.ENQUEUED, reason) for job_id in released], now)
    if released:
        tx.wake_workers()
