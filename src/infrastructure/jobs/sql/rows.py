"""Conversions between the engine's records and table rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any

from application.jobs import (
    ContinueOn,
    Cron,
    JobError,
    JobId,
    JobState,
    JSONValue,
    Misfire,
    MisfirePolicy,
    OnExhausted,
    RetryPolicy,
)
from application.jobs.values import exception_name
from infrastructure.jobs.engine.model import Job, RecurringJob, UnloadableRecurring
from infrastructure.jobs.engine.states import ACTIVE_STATES


def dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def payload(args: list[JSONValue], kwargs: dict[str, JSONValue]) -> str:
    return dump({"args": args, "kwargs": kwargs})


def load_payload(text: str) -> tuple[list[JSONValue], dict[str, JSONValue]]:
    data = json.loads(text)
    return data["args"], data["kwargs"]


@functools.lru_cache(maxsize=256)
def dump_retry(policy: RetryPolicy) -> str:
    return dump(
        {
            **dataclasses.asdict(policy),
            "delays": list(policy.delays),
            "retry_on": list(map(exception_name, policy.retry_on)),
            "give_up_on": list(map(exception_name, policy.give_up_on)),
        }
    )


@functools.lru_cache(maxsize=256)
def load_retry(text: str) -> RetryPolicy:
    data = json.loads(text)
    return RetryPolicy(
        attempts=data["attempts"],
        delays=tuple(data["delays"]),
        base_delay=data["base_delay"],
        max_delay=data["max_delay"],
        jitter=data["jitter"],
        on_exhausted=OnExhausted(data["on_exhausted"]),
        retry_on=tuple(data.get("retry_on", ())),
        give_up_on=tuple(data.get("give_up_on", ())),
    )


def dump_misfire(policy: MisfirePolicy) -> str:
    return dump({"kind": policy.kind, "limit": policy.limit, "grace": policy.grace.total_seconds()})


def load_misfire(text: str) -> MisfirePolicy:
    data = json.loads(text)
    return MisfirePolicy(
        kind=Misfire(data["kind"]),
        limit=data["limit"],
        grace=dt.timedelta(seconds=data["grace"]),
    )


def seconds(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def timedelta(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=value)


JOB_COLUMNS = frozenset(
    "id handler queue state payload created_at state_at run_at attempt retry timeout_seconds "
    "unique_key active_key parent_id continue_on batch_id recurring_id progress "
    "trace_context expires_at".split()
)
"""The columns `job_values` fills."""


def job_values(job: Job, now: dt.datetime) -> dict[str, Any]:
    """Column values of a new job row."""
    return {
        "id": job.id,
        "handler": job.handler,
        "queue": job.queue,
        "state": job.state.value,
        "payload": payload(job.args, job.kwargs),
        "created_at": job.created_at,
        "state_at": now,
        "run_at": job.run_at,
        "attempt": job.attempt,
        "retry": dump_retry(job.retry),
        "timeout_seconds": seconds(job.timeout),
        "unique_key": job.unique_key,
        "active_key": job.unique_key if job.state in ACTIVE_STATES else None,
        "parent_id": job.parent_id,
        "continue_on": job.continue_on.value,
        "batch_id": job.batch_id,
        "recurring_id": job.recurring_id,
        "progress": 0.0,
        "trace_context": dump(job.trace_context) if job.trace_context else None,
        "expires_at": job.expires_at,
    }


def job_of(row: Mapping[Any, Any]) -> Job:
    args, kwargs = load_payload(row["payload"])
    return Job(
        id=JobId(row["id"]),
        handler=row["handler"],
        args=args,
        kwargs=kwargs,
        queue=row["queue"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        run_at=row["run_at"],
        attempt=row["attempt"],
        retry=load_retry(row["retry"]),
        timeout=timedelta(row["timeout_seconds"]),
        unique_key=row["unique_key"],
        parent_id=row["parent_id"],
        continue_on=ContinueOn(row["continue_on"]),
        batch_id=row["batch_id"],
        recurring_id=row["recurring_id"],
        trace_context=json.loads(row["trace_context"]) if row["trace_context"] else {},
        expires_at=row["expires_at"],
    )


def error_of(row: Mapping[Any, Any]) -> JobError | None:
    if row["error_type"] is None:
        return None
    return JobError(
        type=row["error_type"], message=row["error_message"], traceback=row["error_traceback"]
    )


def recurring_values(definition: RecurringJob) -> dict[str, Any]:
    return {
        "id": definition.id,
        "cron": definition.cron.expression,
        "timezone": definition.cron.timezone,
        "misfire": dump_misfire(definition.cron.misfire),
        "handler": definition.handler,
        "payload": payload(definition.args, definition.kwargs),
        "queue": definition.queue,
        "retry": dump_retry(definition.retry),
        "timeout_seconds": seconds(definition.timeout),
        "paused": definition.paused,
        "next_run_at": definition.next_run_at,
        "last_run_at": definition.last_run_at,
        "last_job_id": definition.last_job_id,
    }


def recurring_or_unloadable(row: Mapping[Any, Any]) -> RecurringJob | UnloadableRecurring:
    """The row's recurring job, or what is known of it when this process cannot read it (a
    time zone missing here, a stored value this version refuses)."""
    try:
        return recurring_of(row)
    except (ValueError, KeyError) as exc:  # InvalidSchedule is a ValueError
        return UnloadableRecurring(id=row["id"], next_run_at=row["next_run_at"], error=str(exc))


def recurring_of(row: Mapping[Any, Any]) -> RecurringJob:
    args, kwargs = load_payload(row["payload"])
    return RecurringJob(
        id=row["id"],
        cron=Cron(row["cron"], row["timezone"], load_misfire(row["misfire"])),
        handler=row["handler"],
        args=args,
        kwargs=kwargs,
        queue=row["queue"],
        retry=load_retry(row["retry"]),
        timeout=timedelta(row["timeout_seconds"]),
        next_run_at=row["next_run_at"],
        paused=bool(row["paused"]),
        last_run_at=row["last_run_at"],
        last_job_id=row["last_job_id"],
    )
