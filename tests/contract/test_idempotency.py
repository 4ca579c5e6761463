"""Idempotency keys: a repeated call with the same key returns the first call's job, also
after that job finished, for the retention period; a key reused for another request fails."""

from __future__ import annotations

import datetime as dt

import pytest

from application.jobs import Cron, IdempotencyKeyReused, InvalidArguments, JobState, MisfirePolicy
from tests.contract.conftest import Engine
from tests.contract.handlers import Journal, Recorder


@pytest.mark.smoke
async def test_a_repeat_returns_the_first_job_also_after_it_finished(engine: Engine) -> None:
    jobs = engine.jobs.options(idempotency_key="order-42")
    first = await jobs.enqueue(Recorder.record, 1)
    await engine.drain()

    again = await jobs.enqueue(Recorder.record, 1)
    await engine.drain()

    assert again == first
    assert Journal.calls == [("record", 1)]
    assert (await engine.jobs.get(first)).state is JobState.SUCCEEDED


async def test_the_same_key_for_another_request_is_refused(engine: Engine) -> None:
    jobs = engine.jobs.options(idempotency_key="order-43")
    await jobs.enqueue(Recorder.record, 1)

    with pytest.raises(IdempotencyKeyReused, match="order-43"):
        await jobs.enqueue(Recorder.record, 2)
    with pytest.raises(IdempotencyKeyReused):
        await jobs.options(queue="low").enqueue(Recorder.record, 1)


async def test_a_repeated_schedule_with_a_relative_delay_is_the_same_request(
    engine: Engine,
) -> None:
    jobs = engine.jobs.options(idempotency_key="remind-1")
    first = await jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1)
    engine.clock.advance(dt.timedelta(seconds=5))  # the client retries a little later

    assert await jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1) == first


async def test_a_repeated_trigger_creates_one_job(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring(
        "nightly", Cron("0 2 * * *", misfire=MisfirePolicy.skip()), Recorder.record, 1
    )
    jobs = engine.jobs.options(idempotency_key="trigger-7")

    first = await jobs.trigger_recurring("nightly")

    assert await jobs.trigger_recurring("nightly") == first
    with pytest.raises(IdempotencyKeyReused):
        await jobs.enqueue(Recorder.record, 1)


async def test_keys_are_forgotten_after_the_retention_period(engine: Engine) -> None:
    jobs = engine.jobs.options(idempotency_key="order-44")
    first = await jobs.enqueue(Recorder.record, 1)
    await engine.drain()
    engine.clock.advance(engine.watchdog.settings.retention + dt.timedelta(days=1))

    await engine.watchdog.tick()

    assert await jobs.enqueue(Recorder.record, 2) != first


async def test_an_idempotency_key_with_a_unique_key_holder_returns_the_holder(
    engine: Engine,
) -> None:
    holder = await engine.jobs.options(unique_key="u").enqueue(Recorder.record, 1)
    jobs = engine.jobs.options(unique_key="u", idempotency_key="k")

    assert await jobs.enqueue(Recorder.record, 1) == holder
    await engine.drain()
    assert await jobs.enqueue(Recorder.record, 1) == holder


async def test_a_batch_refuses_an_idempotency_key(engine: Engine) -> None:
    with pytest.raises(InvalidArguments, match="idempotency key"):
        async with engine.jobs.options(idempotency_key="b").batch() as batch:
            await batch.enqueue(Recorder.record, 1)
