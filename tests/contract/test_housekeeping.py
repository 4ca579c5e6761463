"""Server heartbeats, dead-server removal and the retention purge."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from application.jobs import BatchNotFound, JobId, JobNotFound, JobState, RetryPolicy
from infrastructure.jobs.engine.model import Tick
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from tests.contract.conftest import QUEUES, SERVER_ID, START, Engine
from tests.contract.handlers import Contextual, Recorder

S = JobState
RETENTION = dt.timedelta(days=7)


async def test_worker_heartbeat_registers_its_server(engine: Engine) -> None:
    await engine.worker.heartbeat()

    [server] = await engine.store.list_servers()
    assert server.id == SERVER_ID
    assert server.queues == QUEUES
    assert server.concurrency == 4
    assert server.heartbeat_at == START

    engine.clock.advance(dt.timedelta(seconds=5))
    await engine.worker.heartbeat()
    [server] = await engine.store.list_servers()
    assert server.heartbeat_at == START + dt.timedelta(seconds=5)
    assert server.started_at == START


async def test_server_without_recent_heartbeat_is_removed_as_dead(engine: Engine) -> None:
    other = engine.new_worker(server_id="server-b")
    await engine.worker.heartbeat()
    await other.heartbeat()

    engine.clock.advance(dt.timedelta(seconds=50))
    await engine.worker.heartbeat()
    engine.clock.advance(dt.timedelta(seconds=11))  # server-b silent for 61 s, server-a for 11 s
    await engine.watchdog.tick()

    assert [s.id for s in await engine.store.list_servers()] == [SERVER_ID]


async def test_server_within_the_timeout_is_kept(engine: Engine) -> None:
    await engine.worker.heartbeat()

    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.watchdog.tick()

    assert [s.id for s in await engine.store.list_servers()] == [SERVER_ID]


async def test_succeeded_and_deleted_jobs_are_purged_after_the_retention(engine: Engine) -> None:
    succeeded = await engine.jobs.enqueue(Recorder.record, 1)
    deleted = await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.delete(deleted)
    await engine.drain()

    engine.clock.advance(RETENTION)
    await engine.watchdog.tick()
    assert (await engine.jobs.get(succeeded)).state is S.SUCCEEDED
    assert (await engine.jobs.get(deleted)).state is S.DELETED

    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    for job_id in (succeeded, deleted):
        with pytest.raises(JobNotFound):
            await engine.jobs.get(job_id)


async def test_failed_and_waiting_jobs_are_not_purged(engine: Engine) -> None:
    failed = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "x")
    scheduled = await engine.jobs.schedule(dt.timedelta(days=30), Recorder.record, 1)
    awaiting = await engine.jobs.continue_with(failed, Recorder.record, 2)
    await engine.drain()

    engine.clock.advance(RETENTION * 2)
    await engine.watchdog.tick()

    assert (await engine.jobs.get(failed)).state is S.FAILED
    assert (await engine.jobs.get(scheduled)).state is S.SCHEDULED
    assert (await engine.jobs.get(awaiting)).state is S.AWAITING


async def test_retention_counts_from_when_the_job_finished(engine: Engine) -> None:
    job_id = await engine.jobs.schedule(dt.timedelta(days=3), Recorder.record, 1)
    engine.clock.advance(dt.timedelta(days=3))
    await engine.drain()

    engine.clock.advance(RETENTION - dt.timedelta(hours=1))  # 10 days after creation
    await engine.watchdog.tick()
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED

    engine.clock.advance(dt.timedelta(hours=2))
    await engine.watchdog.tick()
    with pytest.raises(JobNotFound):
        await engine.jobs.get(job_id)


async def test_requeued_job_is_no_longer_due_for_purge(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record, 1)
    await engine.drain()
    engine.clock.advance(RETENTION)
    await engine.jobs.requeue(job_id)

    engine.clock.advance(dt.timedelta(days=1))
    await engine.watchdog.tick()

    assert (await engine.jobs.get(job_id)).state is S.ENQUEUED


async def test_batch_outlives_the_purge_of_its_finished_jobs(engine: Engine) -> None:
    async with engine.jobs.options(retry=RetryPolicy.none()).batch() as batch:
        done = await batch.enqueue(Recorder.record, 1)
        failing = await batch.enqueue(Contextual.flaky, 2)
        summary = batch.then(Recorder.pair, "summary", "sent")
    await engine.drain()
    engine.clock.advance(RETENTION + dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    with pytest.raises(JobNotFound):
        await engine.jobs.get(done)

    progress = await engine.jobs.get_batch(batch.id)
    assert progress.total == 2
    assert progress.counts[S.FAILED] == 1

    await engine.jobs.requeue(failing)
    await engine.drain()

    assert (await engine.jobs.get(failing)).state is S.SUCCEEDED
    assert (await engine.jobs.get(summary)).state is S.SUCCEEDED


async def test_purge_deletes_in_chunks_until_nothing_is_left(engine: Engine) -> None:
    watchdog = Watchdog(engine.store, engine.clock, WatchdogSettings(chunk=2, max_chunks=10))
    ids = [await engine.jobs.enqueue(Recorder.record, n) for n in range(5)]
    await engine.drain()

    engine.clock.advance(RETENTION + dt.timedelta(seconds=1))
    await watchdog.tick()

    for job_id in ids:
        with pytest.raises(JobNotFound):
            await engine.jobs.get(job_id)


async def test_purge_stops_after_its_chunk_budget(engine: Engine) -> None:
    watchdog = Watchdog(engine.store, engine.clock, WatchdogSettings(chunk=2, max_chunks=1))
    ids = [await engine.jobs.enqueue(Recorder.record, n) for n in range(5)]
    await engine.drain()

    engine.clock.advance(RETENTION + dt.timedelta(seconds=1))
    await watchdog.tick()

    remaining = [job_id for job_id in ids if await _exists(engine, job_id)]
    assert len(remaining) == 3


async def _exists(engine: Engine, job_id: JobId) -> bool:
    try:
        await engine.jobs.get(job_id)
    except JobNotFound:
        return False
    return True


FAILED_RETENTION = dt.timedelta(days=30)
TICK_RETENTION = dt.timedelta(days=1)


async def test_failed_jobs_and_their_history_are_purged_after_their_own_retention(
    engine: Engine,
) -> None:
    failed = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Contextual.flaky, 2)
    await engine.drain()

    engine.clock.advance(FAILED_RETENTION)
    await engine.watchdog.tick()
    assert (await engine.jobs.get(failed)).state is S.FAILED

    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    with pytest.raises(JobNotFound):
        await engine.jobs.get(failed)


async def test_batch_is_purged_once_its_jobs_are_gone(engine: Engine) -> None:
    async with engine.jobs.batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        batch.then(Recorder.pair, "summary", "sent")
    await engine.drain()

    engine.clock.advance(RETENTION + dt.timedelta(seconds=1))
    await engine.watchdog.tick()

    with pytest.raises(BatchNotFound):
        await engine.jobs.get_batch(batch.id)


async def record_tick(engine: Engine, fire_at: dt.datetime) -> bool:
    """Record a tick of `every-minute` at `fire_at`, its schedule expected there."""
    now = engine.clock.now()
    await engine.store.set_recurring_paused("every-minute", False, next_run_at=fire_at)
    definition = await engine.store.get_recurring("every-minute")
    assert definition is not None
    return await engine.store.record_ticks(
        "every-minute",
        expected_next_run=fire_at,
        next_run_at=fire_at + dt.timedelta(minutes=1),
        ticks=[Tick(fire_at=fire_at, job=definition.new_job(now, reason="tick"))],
        now=now,
    )


async def add_every_minute(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("every-minute", "* * * * *", Recorder.record, 1)


async def test_tick_ledger_rows_are_purged_after_their_retention(engine: Engine) -> None:
    # Given a tick in the ledger: the same fire time cannot be recorded again
    await add_every_minute(engine)
    assert await record_tick(engine, START)
    assert not await record_tick(engine, START)

    # When its retention has passed, Then the ledger no longer holds it
    engine.clock.advance(TICK_RETENTION)
    await engine.watchdog.tick()
    assert not await record_tick(engine, START)
    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    assert await record_tick(engine, START)


async def test_removing_a_recurring_job_removes_its_ledger(engine: Engine) -> None:
    await add_every_minute(engine)
    assert await record_tick(engine, START)

    await engine.jobs.remove_recurring("every-minute")
    await add_every_minute(engine)

    assert await record_tick(engine, START)


def unserved_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    warnings = [
        r.getMessage() for r in caplog.records if r.__dict__.get("action") == "queue_unserved"
    ]
    caplog.clear()
    return warnings


async def test_jobs_waiting_on_a_queue_no_live_server_serves_are_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await engine.worker.heartbeat()  # serves critical, default and low
    await engine.jobs.enqueue(Recorder.record, 1)
    for n in range(2):
        await engine.jobs.options(queue="reports").enqueue(Recorder.record, n)

    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.worker.heartbeat()
    await engine.watchdog.tick()
    assert unserved_warnings(caplog) == [
        "2 job(s) wait on queue 'reports', which no live server serves "
        "(oldest enqueued at 2026-01-05T09:00:00+00:00)"
    ]

    engine.clock.advance(dt.timedelta(minutes=1))  # said already: not again so soon
    await engine.worker.heartbeat()
    await engine.watchdog.tick()
    assert unserved_warnings(caplog) == []

    engine.clock.advance(dt.timedelta(minutes=10))  # still unserved: said again
    await engine.worker.heartbeat()
    await engine.watchdog.tick()
    assert len(unserved_warnings(caplog)) == 1

    engine.clock.advance(dt.timedelta(minutes=10))  # a server for it started
    await engine.worker.heartbeat()
    await engine.new_worker(server_id="reporter", queues=("reports",)).heartbeat()
    await engine.watchdog.tick()
    assert unserved_warnings(caplog) == []
