"""Why a job is not running, in plain words: pure rules over facts the admin reads from the
store, so every store explains the same way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from application.jobs import (
    BatchView,
    ContinueOn,
    JobId,
    JobState,
    JobView,
    JSONValue,
    Obstacle,
    Reason,
    ServerView,
)

S = JobState


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the explanation of one job rests on, read from the store at `now`."""

    job: JobView
    now: dt.datetime
    parent: JobView | None = None
    batch: BatchView | None = None
    servers: list[ServerView] = field(default_factory=list)
    """Live servers that take jobs from the job's queue (read for waiting jobs)."""
    ahead: int = 0
    """Enqueued jobs of its queue claimed before it."""
    recurring_paused: bool = False


def explain(facts: Facts) -> list[Reason]:
    """The reasons, most decisive first."""
    reasons = [_by_state(facts)]
    job = facts.job
    if job.state in (S.SCHEDULED, S.AWAITING) and not facts.servers:
        reasons.append(_no_server_later(job.queue))
    if facts.recurring_paused and job.recurring_id is not None:
        text = f"Its recurring job {job.recurring_id!r} is paused: no new runs until resumed."
        reasons.append(
            Reason(
                obstacle=Obstacle.RECURRING_PAUSED,
                text=text,
                facts={"recurring_id": job.recurring_id},
            )
        )
    return reasons


def _by_state(facts: Facts) -> Reason:
    match facts.job.state:
        case S.PROCESSING:
            return _running(facts.job)
        case S.SCHEDULED:
            return _scheduled(facts.job, facts.now)
        case S.AWAITING:
            return _awaiting(facts)
        case S.ENQUEUED:
            return _enqueued(facts)
        case S.SUCCEEDED | S.FAILED | S.DELETED:
            return _finished(facts.job)


def _running(job: JobView) -> Reason:
    text = f"It is running: attempt {job.attempt} of {job.max_attempts}."
    return Reason(obstacle=Obstacle.RUNNING, text=text, facts={"attempt": job.attempt})


def _scheduled(job: JobView, now: dt.datetime) -> Reason:
    run_at = job.run_at or now
    when = f"{instant(run_at)} ({relative(run_at - now)})"
    facts: dict[str, JSONValue] = {
        "run_at": run_at.isoformat(),
        "seconds": round((run_at - now).total_seconds()),
    }
    if job.attempt == 0:
        return Reason(obstacle=Obstacle.SCHEDULED, text=f"It is scheduled for {when}.", facts=facts)
    retries = job.max_attempts - 1
    text = f"Attempt {job.attempt} failed; retry {job.attempt} of {retries} is due at {when}."
    if job.error is not None:
        text += f" The last error: {job.error.type}: {job.error.message}"
    facts |= {"retry": job.attempt, "retries": retries}
    return Reason(obstacle=Obstacle.RETRY_SCHEDULED, text=text, facts=facts)


def _awaiting(facts: Facts) -> Reason:
    job = facts.job
    if job.parent_id is not None:
        return _awaiting_parent(job.parent_id, facts.parent)
    batch = facts.batch
    if batch is None:
        return Reason(obstacle=Obstacle.AWAITING_BATCH, text="It waits for a batch that is gone.")
    text = f"It waits for batch {batch.id}: {batch.finished} of {batch.total} jobs finished."
    numbers: dict[str, JSONValue] = {
        "batch_id": str(batch.id),
        "finished": batch.finished,
        "total": batch.total,
    }
    return Reason(obstacle=Obstacle.AWAITING_BATCH, text=text, facts=numbers)


def _awaiting_parent(parent_id: JobId, parent: JobView | None) -> Reason:
    ids: dict[str, JSONValue] = {"parent_id": str(parent_id)}
    if parent is None:
        text = f"It waits for its parent job {parent_id}, which no longer exists."
        return Reason(obstacle=Obstacle.AWAITING_PARENT, text=text, facts=ids)
    text = f"It waits for its parent job {parent_id} ({parent.handler}), which is {parent.state}."
    if parent.state.is_final:
        text += f" It runs only if the parent succeeds ({ContinueOn.SUCCESS}): requeue the parent."
    facts = ids | {"parent_state": parent.state.value}
    return Reason(obstacle=Obstacle.AWAITING_PARENT, text=text, facts=facts)


def _enqueued(facts: Facts) -> Reason:
    queue, servers, ahead = facts.job.queue, facts.servers, facts.ahead
    if not servers:
        text = f"It is enqueued on queue {queue!r}, which no live server listens to."
        return Reason(obstacle=Obstacle.NO_SERVER, text=text, facts={"queue": queue})
    slots = sum(server.concurrency for server in servers)
    busy = sum(min(server.running, server.concurrency) for server in servers)
    numbers: dict[str, JSONValue] = {
        "queue": queue,
        "servers": len(servers),
        "slots": slots,
        "busy": busy,
        "ahead": ahead,
    }
    jobs_ahead = f"{ahead} job{'' if ahead == 1 else 's'} ahead of it"
    if busy >= slots:
        text = (
            f"Every worker slot of the {len(servers)} server(s) on queue {queue!r} is busy "
            f"({busy} of {slots}); {jobs_ahead}."
        )
        return Reason(obstacle=Obstacle.WORKERS_BUSY, text=text, facts=numbers)
    text = (
        f"It is next in line on queue {queue!r}: {slots - busy} of {slots} worker slots are "
        f"free; {jobs_ahead}. A worker should take it within moments."
    )
    return Reason(obstacle=Obstacle.NEXT_IN_LINE, text=text, facts=numbers)


def _no_server_later(queue: str) -> Reason:
    text = (
        f"When it is due it goes to queue {queue!r}, which no live server listens to: it will "
        "wait there until a server with that queue starts."
    )
    return Reason(obstacle=Obstacle.NO_SERVER, text=text, facts={"queue": queue})


def _finished(job: JobView) -> Reason:
    at = job.history[-1].at if job.history else job.created_at
    text = f"It {job.state} at {instant(at)} and runs no more unless requeued."
    if job.state is S.FAILED and job.error is not None:
        text = (
            f"It failed at {instant(at)} after {job.attempt} attempt(s): "
            f"{job.error.type}: {job.error.message}. Requeue it to run it again."
        )
    return Reason(obstacle=Obstacle.FINISHED, text=text, facts={"state": job.state.value})


def instant(at: dt.datetime) -> str:
    """An instant as operators read it: UTC, to the second."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(delta: dt.timedelta) -> str:
    """`in 3 min 20 s`, `5 s ago` or `now`, two units at most."""
    seconds = round(delta.total_seconds())
    if seconds == 0:
        return "now"
    words = _duration(abs(seconds))
    return f"in {words}" if seconds >= 0 else f"{words} ago"


def _duration(seconds: int) -> str:
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}")
    return " ".join(parts[:2]) or "0 s"
