"""`EngineJobAdmin`, the operators' port, over every store: jobs by handler name and JSON
arguments, pages with cursors, bulk actions, stats, recurring fire times and servers."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from uuid import UUID

import pytest

from application.jobs import (
    BulkAction,
    BulkResult,
    Cron,
    HandlerNotRegistered,
    InvalidArguments,
    InvalidQuery,
    JobFilter,
    JobId,
    JobSort,
    JobState,
    MinuteCount,
    RetryPolicy,
    SkippedJob,
    UniqueKeyHeld,
)
from infrastructure.jobs.engine import admin as admin_module
from infrastructure.jobs.engine.admin import EngineJobAdmin
from tests.contract.conftest import START, Engine
from tests.contract.handlers import Blocking, Journal, Recorder

S = JobState
ALL = JobFilter()
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def admin(engine: Engine) -> EngineJobAdmin:
    return engine.admin


# --- jobs by handler name ----------------------------------------------------------------------


async def test_handlers_are_listed_by_name_with_their_argument_schema(
    admin: EngineJobAdmin,
) -> None:
    handlers = {handler.name: handler for handler in admin.handlers()}

    record = handlers["Recorder.record"]
    assert record.queue == "default" and not record.is_async
    assert record.arguments_schema["required"] == ["value"]
    assert handlers["Registered.on_low"].queue == "low"
    assert list(handlers) == sorted(handlers)


async def test_enqueue_by_name_with_json_arguments_runs_the_handler(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    job_id = await admin.enqueue("Recorder.record", [21], {})
    pair_id = await admin.enqueue("Recorder.pair", ["a"], {"second": "b"}, queue="low")

    assert (await engine.jobs.get(pair_id)).queue == "low"
    await engine.drain()
    assert (await engine.jobs.get(job_id)).result == 42
    assert sorted(Journal.calls) == [("pair", ("a", "b")), ("record", 21)]


async def test_enqueue_takes_datetime_and_uuid_arguments_as_strings(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    ident = UUID("12345678-1234-5678-1234-567812345678")

    await admin.enqueue("Recorder.stamp", ["2026-01-05T10:00:00+00:00"], {"ident": str(ident)})
    await engine.drain()

    assert Journal.values("stamp") == [(dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC), ident)]


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        (["21"], {}, "value"),  # a string is no int, even one of digits
        ([1.5], {}, "value"),
        ([], {}, "value"),  # missing
        ([1], {"value": 2}, "value"),  # twice
        ([True], {}, "value"),
    ],
)
async def test_enqueue_with_arguments_of_the_wrong_type_names_the_argument(
    engine: Engine,
    admin: EngineJobAdmin,
    args: list[object],
    kwargs: dict[str, object],
    argument: str,
) -> None:
    with pytest.raises(InvalidArguments) as raised:
        await admin.enqueue("Recorder.record", args, kwargs)  # type: ignore[arg-type]

    assert raised.value.argument == argument
    assert await engine.store.count_jobs(ALL) == 0


async def test_enqueue_of_an_unknown_handler_name_is_refused(admin: EngineJobAdmin) -> None:
    with pytest.raises(HandlerNotRegistered):
        await admin.enqueue("Unregistered.run", [1], {})


async def test_enqueue_with_run_at_schedules_the_job(engine: Engine, admin: EngineJobAdmin) -> None:
    run_at = START + dt.timedelta(hours=1)

    job_id = await admin.enqueue("Recorder.record", [1], {}, run_at=run_at)

    view = await engine.jobs.get(job_id)
    assert (view.state, view.run_at) == (S.SCHEDULED, run_at)


async def test_enqueue_with_continue_after_runs_after_the_parent(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    parent = await admin.enqueue("Recorder.record", [1], {})
    child = await admin.enqueue("Recorder.record", [2], {}, continue_after=parent)

    view = await engine.jobs.get(child)
    assert (view.state, view.parent_id) == (S.AWAITING, parent)
    await engine.drain()
    assert Journal.calls == [("record", 1), ("record", 2)]


async def test_enqueue_at_a_time_and_after_a_job_is_refused(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    parent = await admin.enqueue("Recorder.record", [1], {})

    with pytest.raises(InvalidArguments):
        await admin.enqueue("Recorder.record", [2], {}, run_at=START, continue_after=parent)


# --- pages and cursors -------------------------------------------------------------------------


async def enqueue_many(engine: Engine, count: int) -> list[JobId]:
    """`count` jobs, two per instant, oldest first."""
    ids = []
    for value in range(count):
        if value % 2 == 0:
            engine.clock.advance(dt.timedelta(seconds=1))
        ids.append(await engine.jobs.enqueue(Recorder.record, value))
    return ids


@pytest.mark.parametrize("sort", list(JobSort))
async def test_cursors_page_through_every_job_once(
    engine: Engine, admin: EngineJobAdmin, sort: JobSort
) -> None:
    created = await enqueue_many(engine, 12)

    seen: list[JobId] = []
    sizes = []
    cursor = None
    while True:
        page = await admin.list_jobs(ALL, sort=sort, limit=5, cursor=cursor)
        seen += [job.id for job in page.items]
        sizes.append(len(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert sizes == [5, 5, 2]
    whole = await admin.list_jobs(ALL, sort=sort, limit=100)
    assert seen == [job.id for job in whole.items]
    assert sorted(seen) == sorted(created)


async def test_a_full_last_page_has_no_cursor(engine: Engine, admin: EngineJobAdmin) -> None:
    await enqueue_many(engine, 4)

    page = await admin.list_jobs(ALL, limit=4)

    assert len(page.items) == 4 and page.next_cursor is None


def encoded(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "",
        encoded("garbage"),
        encoded('{"a": 1, "b": 2, "c": 3}'),
        encoded('["-created_at", "yesterday", "12345678-1234-5678-1234-567812345678"]'),
        encoded('["-created_at", "2026-01-05T09:00:00+00:00", 5]'),
        encoded('["-created_at", "2026-01-05T09:00:00+00:00", "not-a-uuid"]'),
        encoded('["-created_at", "2026-01-05T09:00:00", "12345678-1234-5678-1234-567812345678"]'),
        encoded("[" * 100_000 + "]" * 100_000),
    ],
)
async def test_malformed_cursor_is_an_invalid_query(
    engine: Engine, admin: EngineJobAdmin, cursor: str
) -> None:
    await enqueue_many(engine, 2)

    with pytest.raises(InvalidQuery):
        await admin.list_jobs(ALL, cursor=cursor)


async def test_cursor_of_another_sort_is_an_invalid_query(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    await enqueue_many(engine, 3)
    page = await admin.list_jobs(ALL, sort=JobSort.NEWEST, limit=1)
    assert page.next_cursor is not None

    with pytest.raises(InvalidQuery):
        await admin.list_jobs(ALL, sort=JobSort.OLDEST, limit=1, cursor=page.next_cursor)


async def test_page_of_no_jobs_is_an_invalid_query(admin: EngineJobAdmin) -> None:
    with pytest.raises(InvalidQuery):
        await admin.list_jobs(ALL, limit=0)


async def test_count_matches_the_filter(engine: Engine, admin: EngineJobAdmin) -> None:
    await enqueue_many(engine, 3)
    await engine.jobs.enqueue(Recorder.pair, "a", "b")

    assert await admin.count(ALL) == 4
    assert await admin.count(JobFilter(handler="Recorder.pair")) == 1


# --- bulk actions --------------------------------------------------------------------------------


async def test_bulk_delete_deletes_every_matching_job_and_reports_progress(
    engine: Engine, admin: EngineJobAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_module, "BULK_PAGE", 2)  # several pages, deleting as it goes
    doomed = await enqueue_many(engine, 5)
    kept = await engine.jobs.enqueue(Recorder.pair, "a", "b")
    progress: list[int] = []

    result = await admin.apply(
        BulkAction.DELETE, JobFilter(handler="Recorder.record"), progress=progress.append
    )

    assert result == BulkResult(matched=5, changed=5, skipped=0)
    assert progress == [2, 4, 5]  # after each page of BULK_PAGE jobs
    assert {(await engine.jobs.get(job_id)).state for job_id in doomed} == {S.DELETED}
    assert (await engine.jobs.get(kept)).state is S.ENQUEUED


async def test_bulk_requeue_skips_processing_jobs(engine: Engine, admin: EngineJobAdmin) -> None:
    # Given two failed jobs and one that is running
    failing = engine.jobs.options(retry=RetryPolicy.none())
    failed = [await failing.enqueue(Recorder.fail, "boom") for _ in range(2)]
    await engine.drain()
    busy = await engine.jobs.enqueue(Blocking.hold, "busy")
    running = engine.start_worker()
    await Journal.started["busy"].wait()

    # When requeueing failed and processing jobs
    where = JobFilter(states=frozenset({S.FAILED, S.PROCESSING}))
    result = await admin.apply(BulkAction.REQUEUE, where)

    # Then the failed ones are enqueued again and the running one is left alone
    assert (result.matched, result.changed, result.skipped) == (3, 2, 1)
    assert [(s.job_id, s.state) for s in result.skipped_jobs] == [(busy, S.PROCESSING)]
    assert {(await engine.jobs.get(job_id)).state for job_id in failed} == {S.ENQUEUED}
    assert (await engine.jobs.get(busy)).state is S.PROCESSING
    Journal.gates["busy"].set()
    await running
    assert (await engine.jobs.get(busy)).state is S.SUCCEEDED


async def test_bulk_action_on_no_match_does_nothing(engine: Engine, admin: EngineJobAdmin) -> None:
    await enqueue_many(engine, 2)
    progress: list[int] = []

    result = await admin.apply(
        BulkAction.DELETE, JobFilter(queue="critical"), progress=progress.append
    )

    assert result == BulkResult(matched=0, changed=0, skipped=0)
    assert progress == []
    assert await engine.store.count_jobs(JobFilter(states=frozenset({S.ENQUEUED}))) == 2


# --- stats, recurring fire times, servers --------------------------------------------------------


async def test_stats_count_states_and_outcomes_per_minute_of_the_last_hour(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    # Given outcomes 70 minutes ago (outside the hour), 2 minutes ago and now
    engine.clock.set(START - 70 * MINUTE)
    await engine.jobs.enqueue(Recorder.record, 1)
    await engine.drain()
    engine.clock.set(START - 2 * MINUTE)
    await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "boom")
    await engine.drain()
    engine.clock.set(START + dt.timedelta(seconds=20))
    await engine.jobs.enqueue(Recorder.record, 3)
    await engine.drain()
    await engine.jobs.enqueue(Recorder.record, 4)

    stats = await admin.stats()

    assert {state: n for state, n in stats.counts.items() if n} == {
        S.SUCCEEDED: 3,
        S.FAILED: 1,
        S.ENQUEUED: 1,
    }
    minutes = [m.minute for m in stats.per_minute]
    assert minutes == [START - 59 * MINUTE + i * MINUTE for i in range(60)]
    busy = [m for m in stats.per_minute if m.succeeded or m.failed]
    assert busy == [
        MinuteCount(minute=START - 2 * MINUTE, succeeded=1, failed=1),
        MinuteCount(minute=START, succeeded=1, failed=0),
    ]


async def test_next_fire_times_follow_the_schedule_and_stop_while_paused(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    view = await admin.add_or_update_recurring(
        "quarterly", Cron("*/15 * * * *"), "Recorder.record", [1], {}
    )

    assert view.handler == "Recorder.record"
    assert admin.next_fire_times(view, 3) == [START + i * 15 * MINUTE for i in (1, 2, 3)]
    later = START + 20 * MINUTE
    assert admin.next_fire_times(view, 2, after=later) == [START + 30 * MINUTE, START + 45 * MINUTE]
    await engine.jobs.pause_recurring("quarterly")
    assert admin.next_fire_times(await engine.jobs.get_recurring("quarterly"), 3) == []


async def test_a_stored_schedule_this_version_refuses_has_no_next_fire_times(
    admin: EngineJobAdmin,
) -> None:
    # Given a definition stored by a version that still took Jenkins-style `H`
    view = await admin.add_or_update_recurring(
        "old", Cron("*/15 * * * *"), "Recorder.record", [1], {}
    )
    stored_earlier = dataclasses.replace(view, cron=Cron("H * * * *"))

    assert admin.next_fire_times(stored_earlier, 3) == []


async def test_recurring_by_name_with_bad_arguments_is_refused(admin: EngineJobAdmin) -> None:
    with pytest.raises(InvalidArguments):
        await admin.add_or_update_recurring("bad", Cron("* * * * *"), "Recorder.record", ["x"], {})


async def test_servers_are_listed_by_id(engine: Engine, admin: EngineJobAdmin) -> None:
    other = engine.new_worker(server_id="server-0", queues=("low",), concurrency=2)
    await engine.worker.heartbeat()
    await other.heartbeat()

    servers = await admin.list_servers()

    assert [(s.id, s.queues, s.concurrency) for s in servers] == [
        ("server-0", ("low",), 2),
        ("server-a", ("critical", "default", "low"), 4),
    ]
    assert all(s.heartbeat_at == START and s.started_at == START for s in servers)


# --- unique keys on requeue ----------------------------------------------------------------------


async def failed_with_key(engine: Engine, key: str) -> JobId:
    job_id = await engine.jobs.options(retry=RetryPolicy.none(), unique_key=key).enqueue(
        Recorder.fail, "boom"
    )
    await engine.drain()
    assert (await engine.jobs.get(job_id)).state is S.FAILED
    return job_id


async def test_requeue_of_a_job_whose_unique_key_another_job_holds_names_the_holder(
    engine: Engine,
) -> None:
    failed = await failed_with_key(engine, "invoice:7")
    holder = await engine.jobs.options(unique_key="invoice:7").schedule(
        dt.timedelta(hours=1), Recorder.fail, "later"
    )

    with pytest.raises(UniqueKeyHeld) as refused:
        await engine.jobs.requeue(failed)

    assert refused.value.holder == holder
    assert str(holder) in str(refused.value)
    assert (await engine.jobs.get(failed)).state is S.FAILED


async def test_bulk_requeue_of_jobs_sharing_a_unique_key_requeues_one_and_says_why_not_the_rest(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    first, second = [await failed_with_key(engine, "report:1") for _ in range(2)]
    other = await failed_with_key(engine, "report:2")

    result = await admin.apply(BulkAction.REQUEUE, JobFilter(states=frozenset({S.FAILED})))

    assert (result.matched, result.changed, result.skipped) == (3, 2, 1)
    states = {job_id: (await engine.jobs.get(job_id)).state for job_id in (first, second, other)}
    assert states[other] is S.ENQUEUED
    assert sorted(states[job_id] for job_id in (first, second)) == [S.ENQUEUED, S.FAILED]
    [skip] = result.skipped_jobs
    assert states[skip.job_id] is S.FAILED
    assert skip.state is S.FAILED
    assert "holds its unique key" in skip.reason


async def test_bulk_requeue_reports_each_skipped_job_with_its_reason(
    engine: Engine, admin: EngineJobAdmin
) -> None:
    enqueued = await engine.jobs.enqueue(Recorder.record, 1)

    result = await admin.apply(BulkAction.REQUEUE, JobFilter(states=frozenset({S.ENQUEUED})))

    assert result == BulkResult(
        matched=1,
        changed=0,
        skipped=1,
        skipped_jobs=(SkippedJob(job_id=enqueued, state=S.ENQUEUED, reason="enqueued already"),),
    )
