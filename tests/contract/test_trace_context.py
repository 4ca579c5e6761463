"""A job's trace context is stored with it and handed to the worker that claims it, whichever
way the job was created."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from uuid import uuid4

from application.jobs import BatchId, Cron, JobId, JobState, RetryPolicy
from infrastructure.jobs.engine.model import Finish, Job, NewBatch, RecurringJob, Tick
from tests.contract.conftest import LEASE, QUEUES, SERVER_ID, START, Engine

CONTEXT = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=é✓,other=1",
}


def new_job(**changes: Any) -> Job:
    job = Job(
        id=JobId(uuid4()),
        handler="Recorder.record",
        args=[1],
        kwargs={},
        queue="default",
        state=JobState.ENQUEUED,
        created_at=START,
        reason="enqueued",
        trace_context=CONTEXT,
    )
    return dataclasses.replace(job, **changes)


async def claimed_contexts(engine: Engine) -> dict[JobId, dict[str, str]]:
    claims = await engine.store.acquire(
        QUEUES, now=engine.clock.now(), lease=LEASE, limit=100, server_id=SERVER_ID
    )
    return {claim.job.id: claim.job.trace_context for claim in claims}


async def test_trace_context_of_a_single_job_comes_back_with_its_claim(engine: Engine) -> None:
    job = new_job()
    await engine.store.create([job], now=START)

    assert await claimed_contexts(engine) == {job.id: CONTEXT}


async def test_job_without_trace_context_is_claimed_with_an_empty_one(engine: Engine) -> None:
    job = new_job(trace_context={})
    await engine.store.create([job], now=START)

    assert await claimed_contexts(engine) == {job.id: {}}


async def test_trace_contexts_of_jobs_created_together_come_back(engine: Engine) -> None:
    plain, unique = new_job(), new_job(unique_key="k-1", trace_context={"traceparent": "00-1"})
    other = new_job(trace_context={})
    await engine.store.create([plain, unique, other], now=START)

    assert await claimed_contexts(engine) == {
        plain.id: CONTEXT,
        unique.id: {"traceparent": "00-1"},
        other.id: {},
    }


async def test_trace_context_of_continuations_and_a_batch_continuation(engine: Engine) -> None:
    # Given a running parent, a continuation waiting for it, and one created once it succeeded
    parent = new_job(trace_context={})
    await engine.store.create([parent], now=START)
    [claim] = await engine.store.acquire(
        QUEUES, now=START, lease=LEASE, limit=1, server_id=SERVER_ID
    )
    waiting = new_job(state=JobState.AWAITING, parent_id=parent.id)
    await engine.store.create([waiting], now=START)
    done = Finish(job_id=parent.id, token=claim.token, state=JobState.SUCCEEDED, reason="ok")
    assert await engine.store.finish([done], now=START) == [True]
    late = new_job(state=JobState.AWAITING, parent_id=parent.id, trace_context={"c": "2"})
    await engine.store.create([late], now=START)
    # and a batch without jobs, whose continuation may run at once
    batch_id = BatchId(uuid4())
    then = new_job(state=JobState.AWAITING, batch_id=batch_id, trace_context={"a": "b"})
    await engine.store.create([], now=START, batch=NewBatch(id=batch_id, continuation=then))

    assert await claimed_contexts(engine) == {
        waiting.id: CONTEXT,
        late.id: {"c": "2"},
        then.id: {"a": "b"},
    }


async def test_trace_context_of_a_recurring_tick_comes_back(engine: Engine) -> None:
    definition = RecurringJob(
        id="every-minute",
        cron=Cron("* * * * *"),
        handler="Recorder.record",
        args=[1],
        kwargs={},
        queue="default",
        retry=RetryPolicy(),
        timeout=None,
        next_run_at=START,
    )
    await engine.store.upsert_recurring(definition)
    job = new_job(recurring_id="every-minute", reason="recurring tick")

    recorded = await engine.store.record_ticks(
        "every-minute",
        expected_next_run=START,
        next_run_at=START + dt.timedelta(minutes=1),
        ticks=[Tick(fire_at=START, job=job)],
        now=START,
    )

    assert recorded
    assert await claimed_contexts(engine) == {job.id: CONTEXT}
