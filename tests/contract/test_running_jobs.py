"""Running jobs: the job context, retries, cancellation, timeouts, graceful stop, lease rescue."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from application.jobs import JobState, OnExhausted, RetryPolicy
from infrastructure.jobs.engine.model import Finish
from tests.contract.conftest import LEASE, START, Engine
from tests.contract.handlers import (
    WAIT_LIMIT,
    Blocking,
    Contextual,
    Fresh,
    Journal,
    Recorder,
    Registered,
)

S = JobState

SHORT_TIMEOUT = dt.timedelta(seconds=0.05)
"""Small real timeout: it exercises the mechanism; nothing asserts how long anything took."""


async def wait_in_thread(event: threading.Event) -> bool:
    """Wait for an event set by a sync handler's thread, without blocking the loop."""
    return await asyncio.to_thread(event.wait, WAIT_LIMIT)


async def test_each_execution_gets_a_new_handler_instance(engine: Engine) -> None:
    for _ in range(3):
        await engine.jobs.enqueue(Fresh.run)

    await engine.drain()

    assert Journal.values("fresh") == [1, 1, 1]


# --- the job context ---------------------------------------------------------------------------


async def test_context_gives_job_id_and_attempt(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy(attempts=3, delays=(10,))).enqueue(
        Contextual.flaky, 2
    )

    await engine.drain()
    engine.clock.advance(dt.timedelta(seconds=10))
    await engine.drain()

    assert Journal.values("flaky") == [1, 2]
    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.attempt == 2
    assert view.result == 2


async def test_progress_and_log_lines_are_stored_while_the_job_runs(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Contextual.inspect, "invoice 7")
    running = engine.start_worker()
    await Journal.started["inspect"].wait()
    engine.clock.advance(dt.timedelta(seconds=3))

    await engine.worker.heartbeat()

    view = await engine.jobs.get(job_id)
    assert view.state is S.PROCESSING
    assert view.progress == 40
    assert [(line.level, line.message) for line in view.logs] == [("INFO", "working on invoice 7")]
    assert Journal.values("inspect") == [(job_id, 1)]

    Journal.gates["inspect"].set()
    await running

    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.progress == 100
    assert [(line.level, line.message) for line in view.logs] == [
        ("INFO", "working on invoice 7"),
        ("WARNING", "done with invoice 7"),
    ]
    assert view.logs[0].at == START


async def test_sync_handler_gets_a_context_too(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(
        Contextual.inspect_sync, "n"
    )

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert Journal.values("inspect_sync") == [(job_id, 1)]
    assert [line.message for line in view.logs] == ["sync work on n"]


async def test_log_lines_of_every_attempt_are_kept(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy(attempts=3, delays=(1,))).enqueue(
        Contextual.flaky, 3
    )
    await engine.drain()
    assert [line.message for line in (await engine.jobs.get(job_id)).logs] == ["attempt 1"]

    for _ in range(2):
        engine.clock.advance(dt.timedelta(seconds=1))
        await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert [line.message for line in view.logs] == ["attempt 1", "attempt 2", "attempt 3"]


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_explicit_retry_delays_are_visible_as_run_at(engine: Engine) -> None:
    policy = RetryPolicy(attempts=4, delays=(30, 60, 120))
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.fail, "again")

    expected_delays = [30, 60, 120]
    for attempt, delay in enumerate(expected_delays, start=1):
        await engine.drain()
        view = await engine.jobs.get(job_id)
        assert view.state is S.SCHEDULED
        assert view.attempt == attempt
        assert view.run_at == engine.clock.now() + dt.timedelta(seconds=delay)
        assert view.history[-1].reason == f"retry {attempt} of 3"
        engine.clock.advance(dt.timedelta(seconds=delay - 1))
        await engine.drain()
        assert (await engine.jobs.get(job_id)).state is S.SCHEDULED
        engine.clock.advance(dt.timedelta(seconds=1))

    await engine.drain()
    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.attempt == 4
    assert len(Journal.values("fail")) == 4
    assert view.history[-1].reason == "failed after 4 attempts"


@pytest.mark.smoke
async def test_a_finished_job_keeps_its_due_time_whatever_its_result(engine: Engine) -> None:
    """A scheduled job shows when it was due after it came due and finished: with a result
    (both stores), and without one (the SQL store's path for successes without a result);
    the history's `scheduled` entry records the due time too."""
    due = START + dt.timedelta(minutes=1)
    with_result = await engine.jobs.schedule(dt.timedelta(minutes=1), Recorder.record, 1)
    without_result = await engine.jobs.schedule(due, Recorder.pair, "a", "b")
    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.drain()

    for job_id in (with_result, without_result):
        view = await engine.jobs.get(job_id)
        assert view.state is S.SUCCEEDED
        assert view.run_at == due
        assert view.history[0].state is S.SCHEDULED
        assert view.history[0].data == {"run_at": due.isoformat()}


async def test_last_explicit_delay_repeats(engine: Engine):
    policy = RetryPolicy(attempts=4, delays=(5,))
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.fail, "x")

    for _ in range(3):
        await engine.drain()
        assert (await engine.jobs.get(job_id)).run_at == engine.clock.now() + dt.timedelta(
            seconds=5
        )
        engine.clock.advance(dt.timedelta(seconds=5))
    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is S.FAILED


async def test_default_backoff_is_exponential_with_jitter_within_bounds(engine: Engine) -> None:
    policy = RetryPolicy(attempts=4, base_delay=10, max_delay=25, jitter=0.5)
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.fail_async, "x")

    bounds = [(5.0, 10.0), (10.0, 20.0), (12.5, 25.0)]
    for low, high in bounds:
        await engine.drain()
        view = await engine.jobs.get(job_id)
        assert view.run_at is not None
        waited = (view.run_at - engine.clock.now()).total_seconds()
        assert low <= waited <= high
        engine.clock.set(view.run_at)

    await engine.drain()
    assert (await engine.jobs.get(job_id)).state is S.FAILED


async def test_exhausted_job_is_deleted_when_the_policy_says_so(engine: Engine) -> None:
    policy = RetryPolicy(attempts=2, delays=(1,), on_exhausted=OnExhausted.DELETE)
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.fail, "x")

    await engine.drain()
    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.DELETED
    assert view.error is not None and view.error.message == "x"
    assert view.history[-1].reason == "failed after 2 attempts"


async def test_retry_policy_from_registration_applies(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Registered.failing_on_low, 1)

    await engine.drain()
    view = await engine.jobs.get(job_id)
    assert view.run_at == engine.clock.now() + dt.timedelta(seconds=5)
    engine.clock.advance(dt.timedelta(seconds=5))
    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is S.FAILED
    assert len(Journal.values("failing_on_low")) == 2


# --- cancellation and timeouts -------------------------------------------------------------------


async def test_deleting_a_running_async_job_cancels_it(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "doomed")
    running = engine.start_worker()
    await Journal.started["doomed"].wait()

    await engine.jobs.delete(job_id)
    await engine.worker.heartbeat()
    assert await running == 1

    assert Journal.calls == [("started", "doomed"), ("cancelled", "doomed")]
    view = await engine.jobs.get(job_id)
    assert view.state is S.DELETED
    assert engine.worker.running == 0


async def test_deleting_a_running_sync_job_sets_its_cancelled_flag(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Contextual.poll_until_cancelled)
    running = engine.start_worker()
    assert await wait_in_thread(Journal.thread_started)

    await engine.jobs.delete(job_id)
    await engine.worker.heartbeat()
    await running

    assert await wait_in_thread(Journal.thread_saw_cancel)
    assert Journal.values("saw_cancel") == [job_id]
    assert (await engine.jobs.get(job_id)).state is S.DELETED


async def test_heartbeat_without_deletion_keeps_the_job_running(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "kept")
    running = engine.start_worker()
    await Journal.started["kept"].wait()

    await engine.worker.heartbeat()

    assert not running.done()
    assert ("cancelled", "kept") not in Journal.calls
    Journal.gates["kept"].set()
    await running
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED


async def test_async_job_past_its_timeout_is_cancelled_and_fails(engine: Engine) -> None:
    job_id = await engine.jobs.options(timeout=SHORT_TIMEOUT, retry=RetryPolicy.none()).enqueue(
        Blocking.hold, "slow"
    )

    await engine.worker.run_once()

    assert Journal.calls == [("started", "slow"), ("cancelled", "slow")]
    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None
    assert view.error.type.endswith("JobTimedOut")
    assert "timed out" in view.error.message


async def test_sync_job_past_its_timeout_sees_cancelled_and_fails(engine: Engine) -> None:
    job_id = await engine.jobs.options(timeout=SHORT_TIMEOUT, retry=RetryPolicy.none()).enqueue(
        Contextual.poll_until_cancelled
    )

    await engine.worker.run_once()

    assert await wait_in_thread(Journal.thread_saw_cancel)
    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None and view.error.type.endswith("JobTimedOut")


async def test_timed_out_job_is_retried_per_its_policy(engine: Engine) -> None:
    job_id = await engine.jobs.options(
        timeout=SHORT_TIMEOUT, retry=RetryPolicy(attempts=2, delays=(7,))
    ).enqueue(Blocking.hold, "slow")

    await engine.worker.run_once()

    view = await engine.jobs.get(job_id)
    assert view.state is S.SCHEDULED
    assert view.run_at == START + dt.timedelta(seconds=7)


# --- graceful stop -------------------------------------------------------------------------------


async def test_stopping_lets_short_jobs_finish_and_releases_long_ones(engine: Engine) -> None:
    short_id = await engine.jobs.enqueue(Blocking.hold, "short")
    long_id = await engine.jobs.enqueue(Blocking.hold, "long")
    worker = engine.new_worker(grace=dt.timedelta(seconds=0.3))
    stopping = asyncio.Event()
    run = asyncio.create_task(worker.run(stopping))
    await Journal.started["short"].wait()
    await Journal.started["long"].wait()
    assert [s.id for s in await engine.store.list_servers()] == ["server-b"]

    stopping.set()
    Journal.gates["short"].set()  # the short job finishes within the grace period
    await run

    short = await engine.jobs.get(short_id)
    assert short.state is S.SUCCEEDED
    long = await engine.jobs.get(long_id)
    assert long.state is S.ENQUEUED
    assert long.attempt == 0
    assert long.history[-1].reason == "released: server stopping"
    assert ("cancelled", "long") in Journal.calls
    assert await engine.store.list_servers() == []

    Journal.gates["long"].set()
    await engine.drain()
    long = await engine.jobs.get(long_id)
    assert long.state is S.SUCCEEDED
    assert long.attempt == 1


# --- lease expiry --------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_job_of_a_dead_worker_is_rescued_after_its_lease_expires(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record, 5)
    [claim] = await engine.store.acquire(
        ["default"], now=engine.clock.now(), lease=LEASE, limit=1, server_id="crashed"
    )  # a worker claims the job and dies

    engine.clock.advance(LEASE)
    await engine.watchdog.tick()
    assert (await engine.jobs.get(job_id)).state is S.PROCESSING  # the lease is not over yet

    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    view = await engine.jobs.get(job_id)
    assert view.state is S.ENQUEUED
    assert view.attempt == 1
    assert view.history[-1].reason == "rescued: lease expired"

    await engine.drain()
    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.attempt == 2
    assert Journal.values("record") == [5]

    # The dead worker's late write is ignored.
    assert await engine.store.finish(
        [Finish(job_id=job_id, token=claim.token, state=S.FAILED, reason="late")],
        now=engine.clock.now(),
    ) == [False]
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED


async def test_rescued_job_without_attempts_left_fails(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.record, 5)
    await engine.store.acquire(
        ["default"], now=engine.clock.now(), lease=LEASE, limit=1, server_id="crashed"
    )

    engine.clock.advance(LEASE + dt.timedelta(seconds=1))
    await engine.watchdog.tick()

    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.attempt == 1
    await engine.drain()
    assert Journal.calls == []


async def test_heartbeat_extends_the_lease_of_a_running_job(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "long")
    running = engine.start_worker()
    await Journal.started["long"].wait()

    for _ in range(3):
        engine.clock.advance(LEASE - dt.timedelta(seconds=5))
        await engine.worker.heartbeat()
        await engine.watchdog.tick()
    assert (await engine.jobs.get(job_id)).state is S.PROCESSING

    Journal.gates["long"].set()
    await running
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED


async def test_worker_whose_lease_was_rescued_stops_the_job_and_does_not_record_it(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "stale")
    running = engine.start_worker()
    await Journal.started["stale"].wait()
    engine.clock.advance(LEASE + dt.timedelta(seconds=1))
    await engine.watchdog.tick()
    assert (await engine.jobs.get(job_id)).state is S.ENQUEUED

    await engine.worker.heartbeat()
    await running

    assert ("cancelled", "stale") in Journal.calls
    view = await engine.jobs.get(job_id)
    assert view.state is S.ENQUEUED
    assert view.attempt == 1


@pytest.mark.parametrize("handler", [Recorder.fail, Recorder.fail_async])
async def test_failing_sync_and_async_handlers_both_fail_the_job(engine: Engine, handler) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(handler, "bad")

    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is S.FAILED


async def test_job_deleted_while_running_stays_deleted_when_its_handler_returns(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "finishing")
    running = engine.start_worker()
    await Journal.started["finishing"].wait()

    await engine.jobs.delete(job_id)
    Journal.gates["finishing"].set()
    await running

    assert ("finished", "finishing") in Journal.calls
    view = await engine.jobs.get(job_id)
    assert view.state is S.DELETED
    assert view.result is None
