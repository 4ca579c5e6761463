"""Operators' reads from the store: job lists (filters, sorts, keyset pages), counts, and
outcomes per minute."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from application.jobs import (
    Cron,
    JobFilter,
    JobId,
    JobSort,
    JobState,
    JobSummary,
    MinuteCount,
    RetryPolicy,
)
from infrastructure.jobs.engine.model import as_in_arguments_json
from tests.contract.conftest import START, Engine
from tests.contract.handlers import Recorder, Registered

S = JobState
ALL = JobFilter()
SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)


async def listed(
    engine: Engine, where: JobFilter = ALL, sort: JobSort = JobSort.NEWEST
) -> list[JobSummary]:
    return await engine.store.list_jobs(where, sort=sort, limit=1000)


async def listed_ids(engine: Engine, where: JobFilter = ALL) -> set[JobId]:
    return {job.id for job in await listed(engine, where)}


async def create_mix(engine: Engine) -> dict[str, JobId]:
    """Four jobs a second apart, from START: each differs from the others in one way."""
    created = {"plain": await engine.jobs.enqueue(Recorder.record, 1)}
    engine.clock.advance(SECOND)
    created["low"] = await engine.jobs.enqueue(Registered.on_low, 2)
    engine.clock.advance(SECOND)
    created["scheduled"] = await engine.jobs.schedule(
        dt.timedelta(hours=1), Recorder.pair, "x", "y"
    )
    engine.clock.advance(SECOND)
    await engine.jobs.add_or_update_recurring("nightly", Cron("0 3 * * *"), Recorder.record, 5)
    created["recurring"] = await engine.jobs.trigger_recurring("nightly")
    return created


FILTERS = {
    "states": (JobFilter(states=frozenset({S.SCHEDULED})), {"scheduled"}),
    "two states": (
        JobFilter(states=frozenset({S.SCHEDULED, S.ENQUEUED})),
        {"plain", "low", "scheduled", "recurring"},
    ),
    "queue": (JobFilter(queue="low"), {"low"}),
    "handler": (JobFilter(handler="Recorder.record"), {"plain", "recurring"}),
    "recurring id": (JobFilter(recurring_id="nightly"), {"recurring"}),
    "created from (inclusive)": (
        JobFilter(created_from=START + SECOND),
        {"low", "scheduled", "recurring"},
    ),
    "created to (exclusive)": (JobFilter(created_to=START + SECOND), {"plain"}),
    "text": (JobFilter(text='"y"'), {"scheduled"}),
    "nothing matches": (JobFilter(queue="critical"), set()),
}


@pytest.mark.parametrize(("where", "expected"), FILTERS.values(), ids=FILTERS.keys())
async def test_each_filter_alone_selects_exactly_its_jobs(
    engine: Engine, where: JobFilter, expected: set[str]
) -> None:
    created = await create_mix(engine)

    assert await listed_ids(engine, where) == {created[name] for name in expected}
    assert await engine.store.count_jobs(where) == len(expected)


async def test_filters_combine_as_all_of_them(engine: Engine) -> None:
    created = await create_mix(engine)

    where = JobFilter(
        states=frozenset({S.ENQUEUED}),
        handler="Recorder.record",
        created_from=START,
        created_to=START + 3 * SECOND,
    )
    assert await listed_ids(engine, where) == {created["plain"]}
    assert await listed_ids(engine, JobFilter(queue="low", handler="Recorder.record")) == set()


async def test_list_summarises_each_job(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "boom")
    engine.clock.advance(SECOND)
    await engine.drain()

    [summary] = await listed(engine)
    assert summary == JobSummary(
        id=job_id,
        handler="Recorder.fail",
        queue="default",
        state=S.FAILED,
        created_at=START,
        state_at=START + SECOND,
        run_at=None,
        attempt=1,
        progress=0.0,
        error_type="builtins.RuntimeError",
        recurring_id=None,
    )


# --- text in the arguments ---------------------------------------------------------------------

TEXTS = [
    "100%",
    "100x",
    "a_b",
    "axb",
    "C:\\dir",
    "C:dir",
    "[ab]",
    "a",
    "it's",
    "its",
    "Hello",
    "hello",
    "' OR 1=1 --",
    "'; DROP TABLE jobs; --",
    "é✓",
]
SEARCHES = [
    "100%",
    "%",
    "a_b",
    "_",
    "\\",
    "C:\\d",
    "[ab]",
    "[",
    "'",
    "it's",
    "Hello",
    "hello",
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE jobs; --",
    "\\%",
    '"',
    "é",
    "missing",
]


def stored_json(value: str) -> str:
    """The arguments as stored (`{"args": [...], "kwargs": {...}}`, compact JSON)."""
    return json.dumps({"args": [value], "kwargs": {}}, separators=(",", ":"))


async def test_text_filter_matches_literally_and_with_case(engine: Engine) -> None:
    created = {text: await engine.jobs.enqueue(Recorder.anything, text) for text in TEXTS}

    for search in SEARCHES:
        found = await listed_ids(engine, JobFilter(text=search))

        stored = as_in_arguments_json(search)
        literal = {job_id for text, job_id in created.items() if stored in stored_json(text)}
        assert found == literal, search
        assert await engine.store.count_jobs(JobFilter(text=search)) == len(literal), search


async def test_text_filter_wildcards_and_quotes_do_not_widen_the_match(engine: Engine) -> None:
    created = {text: await engine.jobs.enqueue(Recorder.anything, text) for text in TEXTS}

    async def found(search: str) -> set[str]:
        ids = await listed_ids(engine, JobFilter(text=search))
        return {text for text, job_id in created.items() if job_id in ids}

    assert await found("100%") == {"100%"}
    assert await found("a_b") == {"a_b"}
    assert await found("[ab]") == {"[ab]"}
    assert await found("C:\\") == {"C:\\dir"}
    assert await found("Hello") == {"Hello"}
    assert await found("' OR 1=1 --") == {"' OR 1=1 --"}
    assert await found("' OR '1'='1") == set()
    assert await engine.store.count_jobs(ALL) == len(TEXTS)  # nothing was dropped


async def test_text_filter_matches_non_ascii_text(engine: Engine) -> None:
    texts = ["café", "cafe", "naïve 🙂", "日本語", "Ünïcode"]
    created = {text: await engine.jobs.enqueue(Recorder.anything, text) for text in texts}

    async def found(search: str) -> set[str]:
        ids = await listed_ids(engine, JobFilter(text=search))
        return {text for text, job_id in created.items() if job_id in ids}

    assert await found("café") == {"café"}
    assert await found("caf") == {"café", "cafe"}
    assert await found("🙂") == {"naïve 🙂"}
    assert await found("日本") == {"日本語"}
    assert await found("ünï") == set()  # case-sensitive, as for ASCII
    assert await engine.store.count_jobs(JobFilter(text="é")) == 1


# --- sorting and keyset pages ------------------------------------------------------------------


async def test_each_sort_orders_by_its_column_in_its_direction(engine: Engine) -> None:
    # Given three jobs created one second apart, then changed in another order
    first = await engine.jobs.enqueue(Recorder.record, 1)
    engine.clock.advance(SECOND)
    second = await engine.jobs.enqueue(Recorder.record, 2)
    engine.clock.advance(SECOND)
    third = await engine.jobs.enqueue(Recorder.record, 3)
    engine.clock.advance(SECOND)
    await engine.jobs.delete(second)
    engine.clock.advance(SECOND)
    await engine.jobs.delete(first)

    async def order(sort: JobSort) -> list[JobId]:
        return [job.id for job in await listed(engine, sort=sort)]

    assert await order(JobSort.NEWEST) == [third, second, first]
    assert await order(JobSort.OLDEST) == [first, second, third]
    assert await order(JobSort.RECENTLY_CHANGED) == [first, second, third]
    assert await order(JobSort.LEAST_RECENTLY_CHANGED) == [third, second, first]


@pytest.mark.parametrize(
    "sorts",
    [(JobSort.NEWEST, JobSort.OLDEST), (JobSort.RECENTLY_CHANGED, JobSort.LEAST_RECENTLY_CHANGED)],
)
async def test_ties_go_by_id_in_the_direction_of_the_sort(
    engine: Engine, sorts: tuple[JobSort, JobSort]
) -> None:
    for value in range(6):  # all created (and changed) at START
        await engine.jobs.enqueue(Recorder.record, value)

    descending, ascending = sorts
    down = [job.id for job in await listed(engine, sort=descending)]
    up = [job.id for job in await listed(engine, sort=ascending)]
    assert len(set(up)) == 6
    assert down == up[::-1]


def sort_key(job: JobSummary, sort: JobSort) -> dt.datetime:
    return job.created_at if sort in (JobSort.NEWEST, JobSort.OLDEST) else job.state_at


async def pages(engine: Engine, sort: JobSort, size: int) -> list[list[JobSummary]]:
    found: list[list[JobSummary]] = []
    after: tuple[dt.datetime, JobId] | None = None
    while True:
        page = await engine.store.list_jobs(ALL, sort=sort, limit=size, after=after)
        if not page:
            return found
        found.append(page)
        after = (sort_key(page[-1], sort), page[-1].id)


@pytest.mark.parametrize("sort", list(JobSort))
async def test_keyset_pages_return_every_job_once_in_order(engine: Engine, sort: JobSort) -> None:
    # Given 25 jobs, three at a time sharing their creation instant
    for value in range(25):
        if value % 3 == 0:
            engine.clock.advance(dt.timedelta(milliseconds=250))
        await engine.jobs.enqueue(Recorder.record, value)

    # When listing them seven at a time
    found = await pages(engine, sort, 7)

    # Then the pages concatenate to the whole list, each job once, in order
    assert [len(page) for page in found] == [7, 7, 7, 4]
    whole = await listed(engine, sort=sort)
    assert [job.id for page in found for job in page] == [job.id for job in whole]
    assert len({job.id for job in whole}) == 25
    keys = [sort_key(job, sort) for job in whole]
    assert keys == sorted(keys, reverse=sort.value.startswith("-"))


async def test_keyset_page_after_the_last_row_is_empty(engine: Engine) -> None:
    await engine.jobs.enqueue(Recorder.record, 1)
    [job] = await listed(engine)

    after = (job.created_at, job.id)
    assert await engine.store.list_jobs(ALL, sort=JobSort.NEWEST, limit=5, after=after) == []


# --- counts --------------------------------------------------------------------------------------


async def test_count_by_state_counts_every_job(engine: Engine) -> None:
    for value in range(3):
        await engine.jobs.enqueue(Recorder.record, value)
    await engine.drain()
    await engine.jobs.enqueue(Recorder.record, 9)
    await engine.jobs.schedule(dt.timedelta(minutes=5), Recorder.record, 10)
    await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "boom")
    victim = await engine.jobs.enqueue(Recorder.record, 11)
    await engine.jobs.delete(victim)

    counts = await engine.store.count_by_state()

    assert {state: n for state, n in counts.items() if n} == {
        S.SUCCEEDED: 3,
        S.ENQUEUED: 2,
        S.SCHEDULED: 1,
        S.DELETED: 1,
    }
    assert await engine.store.count_jobs(ALL) == 7
    assert await engine.store.count_jobs(ALL) == len(await listed(engine))


async def test_count_by_state_of_an_empty_store_is_empty(engine: Engine) -> None:
    assert await engine.store.count_by_state() == {}


# --- outcomes per minute -------------------------------------------------------------------------


async def run_at(engine: Engine, at: dt.datetime, *, succeed: int = 0, fail: int = 0) -> None:
    """Run jobs that succeed and fail, finishing at `at`."""
    engine.clock.set(at)
    for value in range(succeed):
        await engine.jobs.enqueue(Recorder.record, value)
    for _ in range(fail):
        await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "boom")
    await engine.drain()


async def test_outcomes_are_counted_per_utc_minute(engine: Engine) -> None:
    await run_at(engine, START - dt.timedelta(microseconds=1), succeed=1)  # before the window
    await run_at(engine, START, succeed=2, fail=1)
    await run_at(engine, START + 30 * SECOND, succeed=1)
    await run_at(engine, START + 3 * MINUTE - dt.timedelta(microseconds=1), succeed=1)
    await run_at(engine, START + 3 * MINUTE, fail=2)
    await run_at(engine, START + 4 * MINUTE, succeed=1)  # the window's end is exclusive

    found = await engine.store.finished_per_minute(since=START, until=START + 4 * MINUTE)

    assert found == [
        MinuteCount(minute=START, succeeded=3, failed=1),
        MinuteCount(minute=START + 2 * MINUTE, succeeded=1, failed=0),
        MinuteCount(minute=START + 3 * MINUTE, succeeded=0, failed=2),
    ]


async def test_outcomes_per_minute_count_final_failures_not_retries(engine: Engine) -> None:
    retrying = RetryPolicy(attempts=2, delays=(30,))
    await engine.jobs.options(retry=retrying).enqueue(Recorder.fail, "boom")
    await engine.drain()  # attempt 1 fails at START: scheduled again, not failed
    engine.clock.advance(MINUTE)
    await engine.drain()  # attempt 2 fails at START + 1 min: failed

    found = await engine.store.finished_per_minute(since=START, until=START + 5 * MINUTE)

    assert found == [MinuteCount(minute=START + MINUTE, succeeded=0, failed=1)]


async def test_outcomes_of_a_later_window_start_at_its_own_minute(engine: Engine) -> None:
    await run_at(engine, START + 90 * SECOND, succeed=1)
    await run_at(engine, START + 61 * MINUTE, fail=1)

    found = await engine.store.finished_per_minute(since=START + MINUTE, until=START + 62 * MINUTE)

    assert found == [
        MinuteCount(minute=START + MINUTE, succeeded=1, failed=0),
        MinuteCount(minute=START + 61 * MINUTE, succeeded=0, failed=1),
    ]
