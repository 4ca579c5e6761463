"""Waiting for a job: `wait` returns the job's view once it is final."""

from __future__ import annotations

import asyncio
import datetime as dt
from uuid import uuid4

import pytest

from application.jobs import JobId, JobNotFound, JobState, RetryPolicy, WaitTimedOut
from tests.contract.conftest import Engine
from tests.contract.handlers import Blocking, Journal, Recorder


@pytest.mark.smoke
async def test_wait_returns_the_view_once_a_worker_finished_the_job(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record, 7)
    waiting = asyncio.create_task(engine.jobs.wait(job_id, timeout=10))

    await engine.drain()
    view = await waiting

    assert view.state is JobState.SUCCEEDED
    assert view.result == 14


async def test_wait_returns_a_failed_or_deleted_job_too(engine: Engine) -> None:
    failing = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "no")
    deleted = await engine.jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1)
    waiting = asyncio.gather(
        engine.jobs.wait(failing, timeout=10), engine.jobs.wait(deleted, timeout=10)
    )

    await engine.drain()
    await engine.jobs.delete(deleted)
    failed_view, deleted_view = await waiting

    assert failed_view.state is JobState.FAILED
    assert failed_view.error is not None
    assert deleted_view.state is JobState.DELETED


async def test_wait_wakes_when_a_running_job_is_deleted(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "long")
    running = engine.start_worker()
    await Journal.started["long"].wait()
    waiting = asyncio.create_task(engine.jobs.wait(job_id, timeout=10))

    await engine.jobs.delete(job_id)
    await engine.worker.heartbeat()  # the worker sees its lease gone and cancels the job

    assert (await waiting).state is JobState.DELETED
    await running


async def test_wait_on_a_job_that_does_not_finish_in_time_raises(engine: Engine) -> None:
    job_id = await engine.jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1)

    with pytest.raises(WaitTimedOut, match=str(job_id)):
        await engine.jobs.wait(job_id, timeout=dt.timedelta(milliseconds=100))


async def test_wait_on_an_unknown_job_raises_not_found(engine: Engine) -> None:
    with pytest.raises(JobNotFound):
        await engine.jobs.wait(JobId(uuid4()), timeout=1)
