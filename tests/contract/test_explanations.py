"""`JobAdmin.explain` and the dashboard's reads (queues, running jobs per server, batches,
pulses, retries) over every store: why a job is not running, in each case."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from application.jobs import (
    Cron,
    JobFilter,
    JobId,
    JobNotFound,
    JobState,
    Obstacle,
    RetryPolicy,
)
from infrastructure.jobs.engine.admin import EngineJobAdmin
from tests.contract.conftest import START, Engine
from tests.contract.handlers import Blocking, Contextual, Journal, Recorder

S = JobState
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def admin(engine: Engine) -> EngineJobAdmin:
    return engine.admin


async def obstacles(admin: EngineJobAdmin, job_id: JobId) -> list[Obstacle]:
    return [reason.obstacle for reason in (await admin.explain(job_id)).reasons]


async def test_scheduled_job_says_when_and_in_how_long(engine: Engine, admin: EngineJobAdmin):
    await engine.worker.heartbeat()  # a live server on the job's queue
    job_id = await engine.jobs.schedule(dt.timedelta(minutes=90), Recorder.record, 1)

    explanation = await admin.explain(job_id)

    (reason,) = explanation.reasons
    assert explanation.state is S.SCHEDULED and reason.obstacle is Obstacle.SCHEDULED
    assert "2026-01-05 10:30:00 UTC (in 1 h 30 min)" in reason.text
    assert reason.facts["seconds"] == 5400


async def test_retry_says_which_of_how_many_and_when(engine: Engine, admin: EngineJobAdmin):
    retry = RetryPolicy(attempts=3, delays=(60,))
    job_id = await engine.jobs.options(retry=retry).enqueue(Recorder.fail, "flat tyre")
    await engine.worker.heartbeat()
    await engine.worker.run_once()

    (reason,) = (await admin.explain(job_id)).reasons

    assert reason.obstacle is Obstacle.RETRY_SCHEDULED
    assert "retry 1 of 2 is due at 2026-01-05 09:01:00 UTC (in 1 min)" in reason.text
    assert "RuntimeError: flat tyre" in reason.text
    retrying = await admin.list_jobs(JobFilter(retries=True))
    assert [job.id for job in retrying.items] == [job_id]


async def test_continuation_names_its_parent_and_the_parent_state(
    engine: Engine, admin: EngineJobAdmin
):
    await engine.worker.heartbeat()
    parent = await engine.jobs.schedule(HOUR, Recorder.record, 1)
    child = await engine.jobs.continue_with(parent, Recorder.record, 2)

    (reason,) = (await admin.explain(child)).reasons

    assert reason.obstacle is Obstacle.AWAITING_PARENT
    assert f"parent job {parent} (Recorder.record), which is scheduled" in reason.text
    assert reason.facts == {"parent_id": str(parent), "parent_state": "scheduled"}
    continuations = await admin.list_jobs(JobFilter(parent_id=parent))
    assert [job.id for job in continuations.items] == [child]


async def test_batch_continuation_says_how_far_the_batch_is(engine: Engine, admin: EngineJobAdmin):
    async with engine.jobs.batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        await batch.enqueue(Recorder.record, 2)
        batch.then(Recorder.record, 3)
    await engine.worker.heartbeat()
    await engine.new_worker(concurrency=1).run_once()  # one of the two
    continuation = (await admin.list_batches())[0].continuation_id
    assert continuation is not None

    (reason,) = (await admin.explain(continuation)).reasons

    assert reason.obstacle is Obstacle.AWAITING_BATCH
    assert f"batch {batch.id}: 1 of 2 jobs finished" in reason.text
    (listed,) = await admin.list_batches()
    assert (listed.id, listed.total, listed.finished) == (batch.id, 2, 1)


async def test_scheduled_job_on_a_queue_no_server_listens_to_says_so_too(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    await engine.worker.heartbeat()  # a live server, on other queues
    job_id = await engine.jobs.options(queue="reports").schedule(HOUR, Recorder.record, 1)

    reasons = (await admin.explain(job_id)).reasons

    assert [r.obstacle for r in reasons] == [Obstacle.SCHEDULED, Obstacle.NO_SERVER]
    assert "queue 'reports', which no live server listens to" in reasons[1].text


async def test_job_view_flags_a_waiting_job_whose_queue_no_server_listens_to(
    engine: Engine,
) -> None:
    await engine.worker.heartbeat()  # serves critical, default and low
    served = await engine.jobs.enqueue(Recorder.record, 1)
    unserved = await engine.jobs.options(queue="reports").enqueue(Recorder.record, 2)
    later = await engine.jobs.options(queue="reports").schedule(HOUR, Recorder.record, 3)

    assert not (await engine.jobs.get(served)).queue_unserved
    assert (await engine.jobs.get(unserved)).queue_unserved
    assert (await engine.jobs.get(later)).queue_unserved
    await engine.new_worker(server_id="reporter", queues=("reports",)).heartbeat()
    assert not (await engine.jobs.get(unserved)).queue_unserved


async def test_enqueued_job_on_a_queue_no_server_listens_to(engine: Engine, admin: EngineJobAdmin):
    await engine.worker.heartbeat()  # a live server, on other queues
    job_id = await engine.jobs.options(queue="nobody").enqueue(Recorder.record, 1)

    (reason,) = (await admin.explain(job_id)).reasons

    assert reason.obstacle is Obstacle.NO_SERVER
    assert "queue 'nobody', which no live server listens to" in reason.text


async def test_enqueued_job_behind_busy_workers_counts_the_jobs_ahead(
    engine: Engine, admin: EngineJobAdmin
):
    # Given the worker's 4 slots busy and 2 more jobs waiting
    labels = [f"hold-{i}" for i in range(6)]
    ids = []
    for label in labels:
        ids.append(await engine.jobs.enqueue(Blocking.hold, label))
        engine.clock.advance(dt.timedelta(seconds=1))
    running = engine.start_worker()
    await asyncio.gather(*(Journal.started[label].wait() for label in labels[:4]))
    await engine.worker.heartbeat()

    # Then the last one is blocked by busy slots, with one job ahead of it
    (reason,) = (await admin.explain(ids[5])).reasons
    assert reason.obstacle is Obstacle.WORKERS_BUSY
    assert "(4 of 4); 1 job ahead of it" in reason.text
    assert [(s.id, s.running) for s in await admin.list_servers()] == [("server-a", 4)]
    assert await obstacles(admin, ids[0]) == [Obstacle.RUNNING]

    for label in labels:
        Journal.gates[label].set()
    await running
    await engine.drain()


async def test_enqueued_job_with_free_slots_is_next_in_line(engine: Engine, admin: EngineJobAdmin):
    await engine.worker.heartbeat()
    first = await engine.jobs.enqueue(Recorder.record, 1)
    engine.clock.advance(dt.timedelta(seconds=1))
    second = await engine.jobs.enqueue(Recorder.record, 2)

    (reason,) = (await admin.explain(second)).reasons

    assert reason.obstacle is Obstacle.NEXT_IN_LINE
    assert "4 of 4 worker slots are free; 1 job ahead of it" in reason.text
    assert reason.facts["ahead"] == 1 and await obstacles(admin, first) == [Obstacle.NEXT_IN_LINE]


async def test_job_of_a_paused_recurring_job_says_so(engine: Engine, admin: EngineJobAdmin):
    await engine.jobs.add_or_update_recurring("minutely", Cron("* * * * *"), Recorder.record, 1)
    job_id = await engine.jobs.trigger_recurring("minutely")
    await engine.jobs.pause_recurring("minutely")

    reasons = (await admin.explain(job_id)).reasons

    assert [r.obstacle for r in reasons] == [Obstacle.NO_SERVER, Obstacle.RECURRING_PAUSED]
    assert "recurring job 'minutely' is paused" in reasons[1].text


async def test_failed_job_says_how_it_failed(engine: Engine, admin: EngineJobAdmin):
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "no")
    await engine.drain()

    (reason,) = (await admin.explain(job_id)).reasons

    assert reason.obstacle is Obstacle.FINISHED
    assert "after 1 attempt(s): builtins.RuntimeError: no. Requeue it" in reason.text


async def test_unknown_job_cannot_be_explained(admin: EngineJobAdmin):
    with pytest.raises(JobNotFound):
        await admin.explain(JobId(uuid.uuid4()))


async def test_queues_show_length_oldest_job_and_servers(engine: Engine, admin: EngineJobAdmin):
    await engine.worker.heartbeat()
    await engine.jobs.options(queue="mail").enqueue(Recorder.record, 1)
    engine.clock.advance(dt.timedelta(seconds=5))
    await engine.jobs.options(queue="mail").enqueue(Recorder.record, 2)

    queues = {queue.name: queue for queue in await admin.queues()}

    assert set(queues) == {"critical", "default", "low", "mail"}
    mail = queues["mail"]
    assert (mail.enqueued, mail.oldest_enqueued_at, mail.servers) == (2, START, 0)
    assert (queues["low"].enqueued, queues["low"].servers) == (0, 1)


async def test_pulses_change_with_state_progress_and_log_lines(
    engine: Engine, admin: EngineJobAdmin
):
    job_id = await engine.jobs.enqueue(Contextual.inspect_sync, "pulse")
    missing = JobId(uuid.uuid4())
    before = await admin.pulses([job_id, missing])

    await engine.drain()
    after = (await admin.pulses([job_id]))[job_id]

    assert list(before) == [job_id] and before[job_id].state is S.ENQUEUED
    assert (after.state, after.progress, after.log_lines) == (S.SUCCEEDED, 100, 1)


async def test_each_failed_attempt_keeps_its_traceback_in_the_history(engine: Engine):
    retry = RetryPolicy(attempts=2, delays=(0,))
    job_id = await engine.jobs.options(retry=retry).enqueue(Recorder.fail, "twice")

    await engine.drain()

    view = await engine.jobs.get(job_id)
    failures = [t.data for t in view.history if "exception_type" in t.data]
    assert [t.state for t in view.history if "exception_type" in t.data] == [S.SCHEDULED, S.FAILED]
    for data in failures:
        assert "RuntimeError: twice" in str(data["traceback"])
        assert "Traceback (most recent call last)" in str(data["traceback"])
