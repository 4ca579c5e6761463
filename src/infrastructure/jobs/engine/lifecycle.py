"""The job lifecycle, written once for every store: what creating and moving jobs do, and
what follows (continuations, batch release). Each function runs inside one store
`Transaction`; the states themselves come from the pure rules of `states.py`. The verbs that
time drives (due jobs, deadlines, rescue, recurring ticks) are in `upkeep.py`, claiming and
finishing in `running.py`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from application.jobs import (
    BatchId,
    IdempotencyKeyReused,
    InvalidTransition,
    JobId,
    JobNotFound,
    JobState,
    SkippedJob,
    UniqueKeyHeld,
)
from infrastructure.jobs.engine import states
from infrastructure.jobs.engine.model import (
    BulkMove,
    Elect,
    Job,
    Move,
    NewBatch,
    keep,
)
from infrastructure.jobs.engine.transaction import Transaction


# --- creating jobs ----------------------------------------------------------------------------
def create(
    tx: Transaction, jobs: Sequence[Job], now: dt.datetime, batch: NewBatch | None
) -> list[JobId]:
    """Store jobs (and their batch); return their ids, an active key holder's id in place of
    a job whose unique key it holds.

    Raises:
        JobNotFound: a `parent_id` names no job (nothing is stored).
    """
    parents = {job.parent_id for job in jobs if job.parent_id is not None}
    found = tx.lock_jobs(parents) if parents else {}
    if missing := parents - found.keys():
        raise JobNotFound(f"no parent job {next(iter(missing))}")
    simple = [job for job in jobs if plain(job)]
    tx.insert_jobs(simple, now)
    ids = [job.id if plain(job) else _insert_one(tx, job, now, found) for job in jobs]
    if batch is not None:
        _create_batch(tx, batch, ids, now)
    if any(job.state is JobState.ENQUEUED for job in simple):
        tx.wake_workers()
    return ids


def plain(job: Job) -> bool:
    """No parent, unique key or idempotency key: nothing to look up before storing it."""
    return job.parent_id is None and job.unique_key is None and job.request is None


def _insert_one(tx: Transaction, job: Job, now: dt.datetime, parents: Mapping[JobId, Job]) -> JobId:
    """A job with a parent, a unique key or an idempotency key. The idempotency key is looked
    at first: a call made before with it gets that call's job."""
    if job.request is None:
        return _insert_keyed(tx, job, now, parents)
    request = job.request
    earlier = tx.remember_request(request.key, request.fingerprint, job.id, now)
    if earlier is not None:
        earlier_job, fingerprint = earlier
        if fingerprint != request.fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {request.key!r} was used with another request"
            )
        return earlier_job
    created = _insert_keyed(tx, job, now, parents)
    if created != job.id:  # an active job holding the unique key stands in
        tx.repoint_request(request.key, created)
    return created


def _insert_keyed(
    tx: Transaction, job: Job, now: dt.datetime, parents: Mapping[JobId, Job]
) -> JobId:
    """A job with a parent or a unique key. The key is looked at first: while an active job
    holds it, that job stands in for the new one, whatever state the new one would start in."""
    if job.unique_key is not None and (holder := tx.holder_of(job.unique_key)) is not None:
        return holder
    if job.parent_id is not None:
        parent = parents[job.parent_id]  # locked by `create`
        state, reason = states.continuation_start(parent.state, job.continue_on)
        job = dataclasses.replace(job, state=state, reason=reason)
    if job.unique_key is not None and job.state in states.ACTIVE_STATES:
        holder = _insert_holding(tx, job, job.unique_key, now)
        if holder is not None:
            return holder
    else:
        tx.insert_jobs([job], now)
    if job.state is JobState.ENQUEUED:
        tx.wake_workers()
    return job.id


def _insert_holding(tx: Transaction, job: Job, key: str, now: dt.datetime) -> JobId | None:
    """Store a job holding `key`; None if stored, else the job that holds it. Another
    transaction may take the key, or give it up, between our insert and our look."""
    for _ in range(3):
        if tx.insert_unique(job, now):
            return None
        if (holder := tx.holder_of(key)) is not None:
            return holder
    raise InvalidTransition(f"unique key {key!r} changes hands too often; try again")


def _create_batch(
    tx: Transaction, batch: NewBatch, job_ids: Sequence[JobId], now: dt.datetime
) -> None:
    tx.insert_batch(batch.id, job_ids=job_ids, continuation=batch.continuation, now=now)
    if batch.continuation is not None:
        _insert_one(tx, batch.continuation, now, {})
        _release_batch(tx, batch.id, now)


# --- moving jobs ------------------------------------------------------------------------------
def apply(
    tx: Transaction, moves: Sequence[Move], now: dt.datetime, *, contested: bool = False
) -> None:
    """Apply transitions of jobs no worker writes to, and what they let run. `contested`:
    the moves may take unique keys (see `Transaction.move`)."""
    if not moves:
        return
    tx.move(moves, now, contested=contested)
    if any(move.to is JobState.ENQUEUED for move in moves):
        tx.wake_workers()
    after_final(tx, [move for move in moves if move.to.is_final], now)


def after_final(
    tx: Transaction,
    finished: Sequence[Move],
    now: dt.datetime,
    batch_ids: set[BatchId] | None = None,
) -> None:
    """Release the continuations and batch continuations that jobs reaching a final state
    let run (and, through `apply`, what those release in turn)."""
    if not finished:
        return
    final_state = {move.job_id: move.to for move in finished}
    releases = []
    for child in tx.awaiting_children(final_state.keys()):
        assert child.parent_id is not None
        released = states.continuation_release(final_state[child.parent_id], child.continue_on)
        if released is not None:
            releases.append(Move(child.id, *released))
    apply(tx, releases, now)
    for batch_id in tx.batch_ids(final_state.keys()) if batch_ids is None else batch_ids:
        _release_batch(tx, batch_id, now)


def _release_batch(tx: Transaction, batch_id: BatchId, now: dt.datetime) -> None:
    """Enqueue the batch's continuation if its jobs' states now allow it. The batch row is
    locked first, so the last two jobs finishing at once cannot both miss the release."""
    locked = tx.lock_batch(batch_id)
    if locked is None:
        return
    continuation_id, continue_on = locked
    continuation = tx.lock_jobs([continuation_id]).get(continuation_id)
    if continuation is None or continuation.state is not JobState.AWAITING:
        return
    released = states.batch_release(tx.batch_states(batch_id, continuation_id), continue_on)
    if released is not None:
        apply(tx, [Move(continuation_id, *released)], now)


def change_state(
    tx: Transaction,
    job_id: JobId,
    to: JobState,
    now: dt.datetime,
    *,
    reason: str,
    unless: frozenset[JobState] = frozenset(),
    elect: Elect = keep,
) -> JobState:
    """Move one job (delete, requeue); return the state it was in. See `JobStore`."""
    job = tx.lock_jobs([job_id]).get(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    if job.state is to or job.state in unless:
        return job.state
    move = _elected_move(tx, job, Move(job_id, to, reason), elect)
    try:
        apply(tx, [move], now, contested=_takes_keys([move]))
    except UniqueKeyHeld as taken:  # by a transaction that committed after our check
        raise _key_held(tx, job, move.to) or taken from None
    return job.state


def change_states(
    tx: Transaction,
    job_ids: Sequence[JobId],
    to: JobState,
    now: dt.datetime,
    *,
    reason: str,
    unless: frozenset[JobState] = frozenset(),
    elect: Elect = keep,
) -> BulkMove:
    """Move each job that may move (bulk delete, requeue); say why each other one stays."""
    found = tx.lock_jobs(job_ids)
    skipped = [SkippedJob(job_id=i, state=None, reason="gone") for i in job_ids if i not in found]
    moves, keys = [], set[str]()
    for job in found.values():
        try:
            moves.append(_bulk_move(tx, job, Move(job.id, to, reason), unless, elect, keys))
        except InvalidTransition as refused:
            skipped.append(SkippedJob(job_id=job.id, state=job.state, reason=str(refused)))
    moved = _apply_contested(tx, moves, found, now, skipped)
    return BulkMove(moved=moved, skipped=skipped)


def _takes_keys(moves: Sequence[Move]) -> bool:
    """Whether the moves may take unique keys: only moves to active states do."""
    return any(move.to in states.ACTIVE_STATES for move in moves)


def _bulk_move(
    tx: Transaction,
    job: Job,
    move: Move,
    unless: frozenset[JobState],
    elect: Elect,
    keys: set[str],
) -> Move:
    """The move of one job of a bulk action; its unique key is added to `keys`, those the
    action's moves take.

    Raises:
        InvalidTransition: the job stays (the message says why).
    """
    if job.state is move.to:
        raise InvalidTransition(f"{job.state} already")
    if job.state in unless:
        raise InvalidTransition(f"{job.state}: left alone by this action")
    elected = _elected_move(tx, job, move, elect)
    if job.unique_key is not None and elected.to in states.ACTIVE_STATES:
        if job.unique_key in keys:
            raise InvalidTransition(
                f"job {job.id} cannot move to {elected.to}: another job of this action "
                "holds its unique key"
            )
        keys.add(job.unique_key)
    return elected


def _apply_contested(
    tx: Transaction,
    moves: list[Move],
    jobs: Mapping[JobId, Job],
    now: dt.datetime,
    skipped: list[SkippedJob],
) -> set[JobId]:
    """Apply the moves; should another transaction take a unique key meanwhile, apply them
    one by one, skipping those whose key is taken. Returns the ids moved."""
    try:
        apply(tx, moves, now, contested=_takes_keys(moves))
    except UniqueKeyHeld:
        pass
    else:
        return {move.job_id for move in moves}
    moved = set()
    for move in moves:
        try:
            apply(tx, [move], now, contested=True)
        except UniqueKeyHeld as taken:
            job = jobs[move.job_id]
            held = _key_held(tx, job, move.to) or taken
            skipped.append(SkippedJob(job_id=job.id, state=job.state, reason=str(held)))
        else:
            moved.add(move.job_id)
    return moved


def _elected_move(tx: Transaction, job: Job, move: Move, elect: Elect) -> Move:
    """The move as the election leaves it, checked.

    Raises:
        InvalidTransition: the move is not allowed, or the election vetoed it (by electing
            the state the job is in).
    """
    _check_move(tx, job, move.to)
    elected = elect(job, move)
    if elected.to is job.state:
        raise InvalidTransition(f"job {job.id} stays {job.state}: {elected.reason}")
    if elected.to is not move.to:
        _check_move(tx, job, elected.to)
    return elected


def _check_move(tx: Transaction, job: Job, to: JobState) -> None:
    """Raises InvalidTransition (UniqueKeyHeld) unless the job may move to `to` now."""
    states.check_transition(job.id, job.state, to)
    if to is JobState.ENQUEUED and job.state is JobState.PROCESSING:
        states.check_transition(job.id, job.state, JobState.DELETED)
    if (held := _key_held(tx, job, to)) is not None:
        raise held


def _key_held(tx: Transaction, job: Job, to: JobState) -> UniqueKeyHeld | None:
    """The refusal to move `job` to `to` because another active job holds its unique key."""
    if job.unique_key is None or to not in states.ACTIVE_STATES:
        return None
    holder = tx.holder_of(job.unique_key)
    if holder is None or holder == job.id:
        return None
    return UniqueKeyHeld(
        f"job {job.id} cannot move to {to}: job {holder} holds its unique key",
        key=job.unique_key,
        holder=holder,
    )
