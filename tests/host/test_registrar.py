"""The recurring-job registrar: an idempotent upsert at start-up, optionally pruning."""

from __future__ import annotations

import datetime as dt

from application.jobs import Cron
from domain.maintenance import HeartbeatJobs, TempFileJobs
from host.catalog import recurring_declarations, register_handlers
from host.registrar import RecurringJobRegistrar, recurring
from host.settings import Settings
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.memory.store import InMemoryJobStore

START = dt.datetime(2026, 5, 1, 12, 0, 30, tzinfo=dt.UTC)


def service(clock: FakeClock) -> EngineJobService:
    registry = HandlerRegistry()
    register_handlers(registry)
    return EngineJobService(InMemoryJobStore(), registry, clock)


async def test_registering_again_keeps_an_unchanged_schedule() -> None:
    clock = FakeClock(START)
    jobs = service(clock)
    declared = [recurring("beat", Cron("*/5 * * * *"), HeartbeatJobs.beat)]
    await RecurringJobRegistrar(jobs, declared, prune=False).register()
    first = (await jobs.get_recurring("beat")).next_run_at

    clock.advance(dt.timedelta(minutes=7))  # past the stored next run, not yet fired
    await RecurringJobRegistrar(jobs, declared, prune=False).register()

    assert (await jobs.get_recurring("beat")).next_run_at == first


async def test_prune_removes_recurring_jobs_no_longer_declared() -> None:
    jobs = service(FakeClock(START))
    old = recurring("old-cleanup", Cron("0 * * * *"), TempFileJobs.cleanup)
    kept = recurring("beat", Cron("* * * * *"), HeartbeatJobs.beat)
    await RecurringJobRegistrar(jobs, [old, kept], prune=False).register()

    await RecurringJobRegistrar(jobs, [kept], prune=True).register()

    assert [r.id for r in await jobs.list_recurring()] == ["beat"]


async def test_without_prune_undeclared_recurring_jobs_stay() -> None:
    jobs = service(FakeClock(START))
    old = recurring("old-cleanup", Cron("0 * * * *"), TempFileJobs.cleanup)
    kept = recurring("beat", Cron("* * * * *"), HeartbeatJobs.beat)
    await RecurringJobRegistrar(jobs, [old, kept], prune=False).register()

    await RecurringJobRegistrar(jobs, [kept], prune=False).register()

    assert [r.id for r in await jobs.list_recurring()] == ["beat", "old-cleanup"]


def test_the_sample_catalog_declares_its_schedules_with_the_cron_helpers() -> None:
    settings = Settings(business_timezone="Turkey Standard Time", environment="prod")

    declared = {d.id: d.cron for d in recurring_declarations(settings)}

    istanbul = "Europe/Istanbul"
    assert declared == {
        "monthly-invoices": Cron("0 6 1 * *", istanbul),  # 06:00 on the 1st
        "daily-report": Cron("0 2 * * *", istanbul),  # 02:00 every day
        "temp-cleanup": Cron("0 * * * *", istanbul),  # every hour
    }
