"""Recurring jobs: upsert, exactly-once ticks, pause/resume/trigger/remove, misfire policies."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import pytest

from application.jobs import (
    Cron,
    InvalidSchedule,
    JobId,
    JobState,
    MisfirePolicy,
    RecurringJobNotFound,
)
from infrastructure.jobs.engine.store import JobStore
from tests.contract.conftest import START, Engine
from tests.contract.handlers import Journal, Recorder

S = JobState
UTC = dt.UTC


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """An instant on the day the fake clock starts (2026-01-05), UTC."""
    return START.replace(hour=hour, minute=minute, second=second)


class Interleaving:
    """A store whose every call first yields to the event loop, so that two schedulers' rounds
    interleave the way they do against a shared database."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await method(*args, **kwargs)

        return call


# --- definitions ---------------------------------------------------------------------------------


async def test_added_recurring_job_is_stored_with_its_next_run(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record, 1)

    view = await engine.jobs.get_recurring("hourly")
    assert view.id == "hourly"
    assert view.cron == Cron("0 * * * *")
    assert view.handler == "Recorder.record"
    assert view.args == [1]
    assert view.queue == "default"
    assert view.paused is False
    assert view.next_run_at == at(10)
    assert view.last_run_at is None
    assert view.last_job_id is None


async def test_cron_in_a_time_zone_fires_at_local_time(engine: Engine) -> None:
    cron = Cron("0 6 1 * *", timezone="Asia/Kolkata")
    await engine.jobs.add_or_update_recurring("monthly", cron, Recorder.record, 1)

    view = await engine.jobs.get_recurring("monthly")

    assert view.next_run_at == dt.datetime(2026, 2, 1, 0, 30, tzinfo=UTC)
    assert view.cron.timezone == "Asia/Kolkata"


async def test_invalid_cron_and_unknown_time_zone_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule):
        await engine.jobs.add_or_update_recurring("bad", "61 * * * *", Recorder.record, 1)
    with pytest.raises(InvalidSchedule):
        await engine.jobs.add_or_update_recurring("bad", "* * *", Recorder.record, 1)
    with pytest.raises(InvalidSchedule):
        await engine.jobs.add_or_update_recurring(
            "bad", Cron("0 * * * *", timezone="Mars/Olympus"), Recorder.record, 1
        )
    assert await engine.jobs.list_recurring() == []


async def test_list_recurring_is_ordered_by_id(engine: Engine) -> None:
    for recurring_id in ("b", "c", "a"):
        await engine.jobs.add_or_update_recurring(recurring_id, "0 * * * *", Recorder.record, 1)

    assert [r.id for r in await engine.jobs.list_recurring()] == ["a", "b", "c"]


async def test_list_recurring_pages_by_id(engine: Engine) -> None:
    for recurring_id in ("d", "b", "c", "a", "e"):
        await engine.jobs.add_or_update_recurring(recurring_id, "0 * * * *", Recorder.record, 1)

    async def page(after: str | None) -> list[str]:
        return [r.id for r in await engine.jobs.list_recurring(after=after, limit=2)]

    assert [await page(None), await page("b"), await page("d"), await page("e")] == [
        ["a", "b"],
        ["c", "d"],
        ["e"],
        [],
    ]


async def test_get_pause_resume_trigger_of_unknown_recurring_job_raise(engine: Engine) -> None:
    for call in (
        engine.jobs.get_recurring,
        engine.jobs.pause_recurring,
        engine.jobs.resume_recurring,
        engine.jobs.trigger_recurring,
    ):
        with pytest.raises(RecurringJobNotFound):
            await call("missing")


async def test_unchanged_upsert_keeps_the_next_run(engine: Engine) -> None:
    engine.clock.set(at(0, 30))
    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record, 1)
    engine.clock.set(at(1, 30))  # the 01:00 tick is due but no scheduler ran yet

    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record, 1)

    assert (await engine.jobs.get_recurring("hourly")).next_run_at == at(1)
    assert await engine.scheduler.tick() == 1


async def test_upsert_with_new_arguments_keeps_the_schedule_and_uses_them(engine: Engine) -> None:
    engine.clock.set(at(0, 30))
    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record, 1)
    engine.clock.set(at(0, 45))

    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record_async, 2)
    engine.clock.set(at(1))
    await engine.drain()

    view = await engine.jobs.get_recurring("hourly")
    assert view.next_run_at == at(2)
    assert Journal.calls == [("record_async", 2)]


async def test_changed_cron_recomputes_the_next_run(engine: Engine) -> None:
    engine.clock.set(at(0, 30))
    await engine.jobs.add_or_update_recurring("job", "0 * * * *", Recorder.record, 1)
    engine.clock.set(at(1, 30))

    await engine.jobs.add_or_update_recurring("job", "15 * * * *", Recorder.record, 1)

    assert (await engine.jobs.get_recurring("job")).next_run_at == at(2, 15)


async def test_changed_time_zone_recomputes_the_next_run(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("job", "0 12 * * *", Recorder.record, 1)
    assert (await engine.jobs.get_recurring("job")).next_run_at == at(12)

    await engine.jobs.add_or_update_recurring(
        "job", Cron("0 12 * * *", timezone="Europe/Berlin"), Recorder.record, 1
    )

    assert (await engine.jobs.get_recurring("job")).next_run_at == at(11)


# --- ticks ---------------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_each_due_tick_creates_exactly_one_job(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("every-5", "*/5 * * * *", Recorder.record, 1)

    engine.clock.advance(dt.timedelta(minutes=4, seconds=59))
    assert await engine.scheduler.tick() == 0
    engine.clock.advance(dt.timedelta(seconds=1))
    assert await engine.scheduler.tick() == 1
    assert await engine.scheduler.tick() == 0
    engine.clock.advance(dt.timedelta(seconds=30))
    assert await engine.scheduler.tick() == 0
    await engine.drain()

    assert Journal.calls == [("record", 1)]
    view = await engine.jobs.get_recurring("every-5")
    assert view.last_run_at == at(9, 5)
    assert view.next_run_at == at(9, 10)
    assert view.last_job_id is not None
    job = await engine.jobs.get(view.last_job_id)
    assert job.recurring_id == "every-5"
    assert job.state is S.SUCCEEDED


async def test_ticks_keep_firing_on_schedule(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)

    for _ in range(5):
        engine.clock.advance(dt.timedelta(minutes=1))
        await engine.drain()

    assert Journal.values("record") == [1] * 5


async def test_two_schedulers_ticking_at_once_create_one_job_per_tick(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)
    shared = cast(JobStore, Interleaving(engine.store))
    first, second = engine.new_scheduler(shared), engine.new_scheduler(shared)

    for _ in range(3):
        engine.clock.advance(dt.timedelta(minutes=1))
        created = await asyncio.gather(first.tick(), second.tick())
        assert sorted(created) == [0, 1]
    await engine.drain()

    assert Journal.values("record") == [1, 1, 1]


async def test_scheduler_on_another_replica_does_not_fire_a_tick_again(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)
    engine.clock.advance(dt.timedelta(minutes=1))

    assert await engine.scheduler.tick() == 1
    assert await engine.new_scheduler().tick() == 0


async def test_removed_recurring_job_stops_firing_and_keeps_its_jobs(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)
    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.scheduler.tick()
    job_id = (await engine.jobs.get_recurring("minutely")).last_job_id
    assert job_id is not None

    assert await engine.jobs.remove_recurring("minutely") is True
    assert await engine.jobs.remove_recurring("minutely") is False
    engine.clock.advance(dt.timedelta(minutes=5))
    await engine.drain()

    assert Journal.values("record") == [1]
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED
    with pytest.raises(RecurringJobNotFound):
        await engine.jobs.get_recurring("minutely")


async def test_triggered_recurring_job_runs_now_and_keeps_its_schedule(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("daily", "0 6 * * *", Recorder.record, 7)

    job_id = await engine.jobs.trigger_recurring("daily")
    await engine.drain()

    job = await engine.jobs.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.recurring_id == "daily"
    assert Journal.values("record") == [7]
    assert (await engine.jobs.get_recurring("daily")).next_run_at == dt.datetime(
        2026, 1, 6, 6, tzinfo=UTC
    )


async def test_paused_recurring_job_does_not_fire_but_can_be_triggered(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)

    await engine.jobs.pause_recurring("minutely")
    assert (await engine.jobs.get_recurring("minutely")).paused is True
    engine.clock.advance(dt.timedelta(minutes=3))
    await engine.drain()
    assert Journal.calls == []

    await engine.jobs.trigger_recurring("minutely")
    await engine.drain()
    assert Journal.values("record") == [1]


async def test_upsert_keeps_a_recurring_job_paused(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)
    await engine.jobs.pause_recurring("minutely")

    await engine.jobs.add_or_update_recurring("minutely", "*/2 * * * *", Recorder.record, 2)
    engine.clock.advance(dt.timedelta(minutes=5))
    await engine.drain()

    assert (await engine.jobs.get_recurring("minutely")).paused is True
    assert Journal.calls == []


async def test_resumed_recurring_job_fires_from_now_without_catching_up(engine: Engine) -> None:
    await engine.jobs.add_or_update_recurring("minutely", "* * * * *", Recorder.record, 1)
    await engine.jobs.pause_recurring("minutely")
    engine.clock.advance(dt.timedelta(minutes=10, seconds=30))

    await engine.jobs.resume_recurring("minutely")

    view = await engine.jobs.get_recurring("minutely")
    assert view.paused is False
    assert view.next_run_at == at(9, 11)
    await engine.drain()
    assert Journal.calls == []
    engine.clock.set(at(9, 11))
    await engine.drain()
    assert Journal.values("record") == [1]


# --- misfires ------------------------------------------------------------------------------------
# A minutely job whose scheduler was down from 00:00:30 to 00:03:35: the ticks of 00:01 and 00:02
# were missed (more than the 60 s grace late); the tick of 00:03 is only 35 s late and runs.

DOWN_FROM = dt.datetime(2026, 1, 5, 0, 0, 30, tzinfo=UTC)
BACK_AT = dt.datetime(2026, 1, 5, 0, 3, 35, tzinfo=UTC)


async def _after_downtime(engine: Engine, misfire: MisfirePolicy) -> tuple[int, list[str]]:
    engine.clock.set(DOWN_FROM)
    cron = Cron("* * * * *", misfire=misfire)
    await engine.jobs.add_or_update_recurring("minutely", cron, Recorder.record, 1)
    engine.clock.set(BACK_AT)

    created = await engine.scheduler.tick()
    await engine.drain()

    view = await engine.jobs.get_recurring("minutely")
    assert view.next_run_at == dt.datetime(2026, 1, 5, 0, 4, tzinfo=UTC)
    assert view.last_run_at == dt.datetime(2026, 1, 5, 0, 3, tzinfo=UTC)
    assert len(Journal.values("record")) == created
    return created, await _tick_reasons(engine, view.last_job_id)


async def _tick_reasons(engine: Engine, last_job_id: JobId | None) -> list[str]:
    assert last_job_id is not None
    job = await engine.jobs.get(last_job_id)
    return [job.history[0].reason]


async def test_misfire_run_once_runs_one_job_for_the_missed_ticks(engine: Engine) -> None:
    created, reasons = await _after_downtime(engine, MisfirePolicy.run_once())

    assert created == 2  # one for the missed 00:01 and 00:02, one for 00:03 (within grace)
    assert reasons == ["recurring tick 2026-01-05T00:03:00Z"]


async def test_misfire_run_all_runs_every_missed_tick(engine: Engine) -> None:
    created, _ = await _after_downtime(engine, MisfirePolicy.run_all())

    assert created == 3


async def test_misfire_run_all_is_bounded_by_its_limit(engine: Engine) -> None:
    created, _ = await _after_downtime(engine, MisfirePolicy.run_all(limit=1))

    assert created == 2


async def test_misfire_skip_runs_only_the_tick_within_grace(engine: Engine) -> None:
    created, _ = await _after_downtime(engine, MisfirePolicy.skip())

    assert created == 1


async def test_misfire_skip_runs_nothing_when_every_tick_is_late(engine: Engine) -> None:
    engine.clock.set(DOWN_FROM)
    cron = Cron("0 * * * *", misfire=MisfirePolicy.skip())
    await engine.jobs.add_or_update_recurring("hourly", cron, Recorder.record, 1)
    engine.clock.set(dt.datetime(2026, 1, 5, 3, 30, tzinfo=UTC))

    assert await engine.scheduler.tick() == 0
    await engine.drain()

    assert Journal.calls == []
    view = await engine.jobs.get_recurring("hourly")
    assert view.next_run_at == dt.datetime(2026, 1, 5, 4, tzinfo=UTC)
