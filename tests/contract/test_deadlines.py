"""Deadlines: a job not started by its `expires_at` is deleted as "expired", never run late."""

from __future__ import annotations

import datetime as dt

import pytest

from application.jobs import ContinueOn, InvalidSchedule, JobState
from tests.contract.conftest import START, Engine
from tests.contract.handlers import Journal, Recorder

MINUTE = dt.timedelta(minutes=1)


@pytest.mark.smoke
async def test_a_job_claimed_after_its_deadline_is_deleted_as_expired_and_never_runs(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.options(expires_in=MINUTE).enqueue(Recorder.record, 1)
    engine.clock.advance(2 * MINUTE)  # no worker was free in time

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert Journal.calls == []
    assert view.state is JobState.DELETED
    assert view.history[-1].reason == "expired"
    assert view.expires_at == START + MINUTE


async def test_a_job_started_before_its_deadline_runs(engine: Engine) -> None:
    job_id = await engine.jobs.options(expires_at=START + MINUTE).enqueue(Recorder.record, 1)

    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is JobState.SUCCEEDED


async def test_housekeeping_deletes_waiting_jobs_past_their_deadline(engine: Engine) -> None:
    jobs = engine.jobs.options(expires_in=MINUTE)
    enqueued = await jobs.enqueue(Recorder.record, 1)
    scheduled = await jobs.schedule(dt.timedelta(hours=1), Recorder.record, 2)
    parent = await engine.jobs.schedule(dt.timedelta(hours=1), Recorder.record, 3)
    awaiting = await jobs.continue_with(parent, Recorder.record, 4)
    later_jobs = engine.jobs.options(expires_in=dt.timedelta(hours=2))
    later = await later_jobs.enqueue(Recorder.anything, 5)
    engine.clock.advance(2 * MINUTE)

    await engine.watchdog.tick()

    for job_id in (enqueued, scheduled, awaiting):
        view = await engine.jobs.get(job_id)
        assert (view.state, view.history[-1].reason) == (JobState.DELETED, "expired")
    assert (await engine.jobs.get(parent)).state is JobState.SCHEDULED
    assert (await engine.jobs.get(later)).state is JobState.ENQUEUED


async def test_an_expired_parent_releases_an_any_finished_continuation(engine: Engine) -> None:
    parent = await engine.jobs.options(expires_in=MINUTE).enqueue(Recorder.record, 1)
    child = await engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).continue_with(
        parent, Recorder.record, 2
    )
    engine.clock.advance(2 * MINUTE)

    await engine.drain()

    assert Journal.calls == [("record", 2)]
    assert (await engine.jobs.get(child)).state is JobState.SUCCEEDED


async def test_the_earlier_of_expires_at_and_expires_in_counts(engine: Engine) -> None:
    jobs = engine.jobs.options(expires_at=START + 10 * MINUTE, expires_in=MINUTE)
    job_id = await jobs.enqueue(Recorder.record, 1)

    assert (await engine.jobs.get(job_id)).expires_at == START + MINUTE


async def test_a_naive_deadline_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule):
        await engine.jobs.options(expires_at=dt.datetime(2026, 1, 5, 9, 1)).enqueue(
            Recorder.record, 1
        )
