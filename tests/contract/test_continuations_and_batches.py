"""Continuations and batches."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from application.jobs import (
    BatchId,
    BatchNotFound,
    ContinueOn,
    InvalidArguments,
    JobFilter,
    JobId,
    JobNotFound,
    JobState,
    RetryPolicy,
)
from tests.contract.conftest import Engine
from tests.contract.handlers import Blocking, Contextual, Journal, Recorder

S = JobState

ONE_RETRY = RetryPolicy(attempts=2, delays=(60,))


class Boom(Exception):
    pass


# --- continuations -------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_continuation_waits_until_parent_succeeds(engine: Engine) -> None:
    parent = await engine.jobs.schedule(dt.timedelta(minutes=1), Recorder.record, 1)
    child = await engine.jobs.continue_with(parent, Recorder.record, 2)

    assert (await engine.jobs.get(child)).state is S.AWAITING
    assert (await engine.jobs.get(child)).parent_id == parent
    await engine.drain()
    assert Journal.calls == []
    assert (await engine.jobs.get(child)).state is S.AWAITING

    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.drain()

    assert Journal.values("record") == [1, 2]
    view = await engine.jobs.get(child)
    assert view.state is S.SUCCEEDED
    assert [t.state for t in view.history] == [
        S.AWAITING,
        S.ENQUEUED,
        S.PROCESSING,
        S.SUCCEEDED,
    ]


async def test_chain_of_continuations_runs_in_order(engine: Engine) -> None:
    first = await engine.jobs.enqueue(Recorder.record, 1)
    second = await engine.jobs.continue_with(first, Recorder.record_async, 2)
    await engine.jobs.continue_with(second, Recorder.record, 3)

    await engine.drain()

    assert Journal.calls == [("record", 1), ("record_async", 2), ("record", 3)]


async def test_continuation_on_success_keeps_waiting_while_parent_retries_and_fails(
    engine: Engine,
) -> None:
    parent = await engine.jobs.options(retry=ONE_RETRY).enqueue(Recorder.fail, "x")
    child = await engine.jobs.continue_with(parent, Recorder.record, 2)

    await engine.drain()
    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.drain()

    assert (await engine.jobs.get(parent)).state is S.FAILED
    assert (await engine.jobs.get(child)).state is S.AWAITING
    assert Journal.values("record") == []


async def test_continuation_runs_when_a_failed_parent_is_requeued_and_succeeds(
    engine: Engine,
) -> None:
    parent = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Contextual.flaky, 2)
    child = await engine.jobs.continue_with(parent, Recorder.record, 2)
    await engine.drain()
    assert (await engine.jobs.get(child)).state is S.AWAITING

    await engine.jobs.requeue(parent)
    await engine.drain()

    assert (await engine.jobs.get(child)).state is S.SUCCEEDED


async def test_continuation_on_any_finished_state_runs_after_failure(engine: Engine) -> None:
    parent = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "x")
    child = await engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).continue_with(
        parent, Recorder.record, 2
    )

    await engine.drain()

    assert (await engine.jobs.get(child)).state is S.SUCCEEDED
    assert Journal.values("record") == [2]


async def test_continuation_on_any_finished_state_runs_after_deletion(engine: Engine) -> None:
    parent = await engine.jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1)
    child = await engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).continue_with(
        parent, Recorder.record, 2
    )

    await engine.jobs.delete(parent)
    await engine.drain()

    assert (await engine.jobs.get(child)).state is S.SUCCEEDED
    assert Journal.values("record") == [2]


async def test_deleting_the_parent_deletes_its_on_success_continuation(engine: Engine) -> None:
    parent = await engine.jobs.schedule(dt.timedelta(hours=1), Recorder.record, 1)
    child = await engine.jobs.continue_with(parent, Recorder.record, 2)

    await engine.jobs.delete(parent)
    engine.clock.advance(dt.timedelta(hours=2))
    await engine.drain()

    view = await engine.jobs.get(child)
    assert view.state is S.DELETED
    assert view.history[-1].reason
    assert Journal.calls == []


async def test_continuation_created_after_parent_succeeded_is_enqueued_at_once(
    engine: Engine,
) -> None:
    parent = await engine.jobs.enqueue(Recorder.record, 1)
    await engine.drain()

    child = await engine.jobs.continue_with(parent, Recorder.record, 2)

    assert (await engine.jobs.get(child)).state is S.ENQUEUED
    await engine.drain()
    assert Journal.values("record") == [1, 2]


async def test_continuation_created_after_parent_was_deleted_is_deleted(engine: Engine) -> None:
    parent = await engine.jobs.enqueue(Recorder.record, 1)
    await engine.jobs.delete(parent)

    on_success = await engine.jobs.continue_with(parent, Recorder.record, 2)
    on_any = await engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).continue_with(
        parent, Recorder.record, 3
    )

    assert (await engine.jobs.get(on_success)).state is S.DELETED
    assert (await engine.jobs.get(on_any)).state is S.ENQUEUED


async def test_continuation_created_after_parent_failed_waits_or_runs_by_option(
    engine: Engine,
) -> None:
    parent = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "x")
    await engine.drain()

    on_success = await engine.jobs.continue_with(parent, Recorder.record, 2)
    on_any = await engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).continue_with(
        parent, Recorder.record, 3
    )

    assert (await engine.jobs.get(on_success)).state is S.AWAITING
    assert (await engine.jobs.get(on_any)).state is S.ENQUEUED


async def test_unique_continuation_of_a_deleted_parent_returns_the_active_key_holder(
    engine: Engine,
) -> None:
    """The unique-key rule comes before the continuation's start state: while an active job
    holds the key, no job with it is stored, whatever state the continuation would start in
    (store port: "A job whose unique key is held by an active job is not stored")."""
    unique = engine.jobs.options(unique_key="report:7")
    holder = await unique.enqueue(Recorder.record, 1)
    parent = await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.delete(parent)

    continuation = await unique.continue_with(parent, Recorder.record, 3)

    assert continuation == holder
    assert await engine.store.count_jobs(JobFilter()) == 2


async def test_continuation_of_unknown_parent_raises_job_not_found(engine: Engine):
    with pytest.raises(JobNotFound):
        await engine.jobs.continue_with(JobId(uuid4()), Recorder.record, 1)


# --- batches -------------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_batch_creates_its_jobs_when_the_block_ends(engine: Engine) -> None:
    async with engine.jobs.batch() as batch:
        ids = [await batch.enqueue(Recorder.record, n) for n in range(3)]
        with pytest.raises(JobNotFound):
            await engine.jobs.get(ids[0])

    for job_id in ids:
        view = await engine.jobs.get(job_id)
        assert view.state is S.ENQUEUED
        assert view.batch_id == batch.id
    progress = await engine.jobs.get_batch(batch.id)
    assert progress.total == 3
    assert progress.counts[S.ENQUEUED] == 3
    assert progress.finished == 0
    assert progress.continuation_id is None

    await engine.drain()

    assert sorted(Journal.values("record")) == [0, 1, 2]  # type: ignore[type-var]
    assert (await engine.jobs.get_batch(batch.id)).counts[S.SUCCEEDED] == 3


async def test_exception_inside_the_batch_block_creates_nothing(engine: Engine) -> None:
    with pytest.raises(Boom):
        async with engine.jobs.batch() as batch:
            job_id = await batch.enqueue(Recorder.record, 1)
            continuation = batch.then(Recorder.record, 2)
            raise Boom

    for created in (job_id, continuation):
        with pytest.raises(JobNotFound):
            await engine.jobs.get(created)
    with pytest.raises(BatchNotFound):
        await engine.jobs.get_batch(batch.id)
    await engine.drain()
    assert Journal.calls == []


async def test_invalid_job_inside_the_batch_block_creates_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidArguments):
        async with engine.jobs.batch() as batch:
            job_id = await batch.enqueue(Recorder.record, 1)
            await batch.enqueue(Recorder.record, "two")  # type: ignore[arg-type]

    with pytest.raises(JobNotFound):
        await engine.jobs.get(job_id)
    with pytest.raises(BatchNotFound):
        await engine.jobs.get_batch(batch.id)


async def test_batch_progress_counts_jobs_by_state(engine: Engine) -> None:
    async with engine.jobs.options(retry=ONE_RETRY).batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        await batch.enqueue(Recorder.record, 2)
        await batch.enqueue(Contextual.flaky, 2)

    await engine.drain()

    progress = await engine.jobs.get_batch(batch.id)
    assert progress.total == 3
    assert progress.counts[S.SUCCEEDED] == 2
    assert progress.counts[S.SCHEDULED] == 1
    assert progress.finished == 2


async def test_batch_continuation_runs_only_when_all_jobs_finished(engine: Engine) -> None:
    async with engine.jobs.options(retry=ONE_RETRY).batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        await batch.enqueue(Contextual.flaky, 2)
        summary = batch.then(Recorder.pair, "summary", "sent")

    assert (await engine.jobs.get_batch(batch.id)).continuation_id == summary
    await engine.drain()
    assert (await engine.jobs.get(summary)).state is S.AWAITING
    assert Journal.values("pair") == []

    engine.clock.advance(dt.timedelta(minutes=1))
    await engine.drain()

    assert (await engine.jobs.get(summary)).state is S.SUCCEEDED
    assert Journal.values("pair") == [("summary", "sent")]
    assert (await engine.jobs.get_batch(batch.id)).finished == 2


async def test_batch_continuation_does_not_run_when_a_job_failed(engine: Engine) -> None:
    async with engine.jobs.options(retry=RetryPolicy.none()).batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        await batch.enqueue(Recorder.fail, "x")
        summary = batch.then(Recorder.pair, "summary", "sent")

    await engine.drain()

    progress = await engine.jobs.get_batch(batch.id)
    assert (progress.counts[S.SUCCEEDED], progress.counts[S.FAILED]) == (1, 1)
    assert (await engine.jobs.get(summary)).state is S.AWAITING


async def test_batch_continuation_on_any_finished_runs_after_failures(engine: Engine) -> None:
    async with engine.jobs.options(
        retry=RetryPolicy.none(), continue_on=ContinueOn.ANY_FINISHED
    ).batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        await batch.enqueue(Recorder.fail, "x")
        summary = batch.then(Recorder.pair, "summary", "sent")

    await engine.drain()

    assert (await engine.jobs.get(summary)).state is S.SUCCEEDED
    assert Journal.values("pair") == [("summary", "sent")]


async def test_batch_continuation_waits_for_a_running_job(engine: Engine) -> None:
    async with engine.jobs.batch() as batch:
        await batch.enqueue(Blocking.hold, "batch job")
        summary = batch.then(Recorder.pair, "summary", "sent")
    running = engine.start_worker()
    await Journal.started["batch job"].wait()

    assert (await engine.jobs.get(summary)).state is S.AWAITING
    assert (await engine.jobs.get_batch(batch.id)).counts[S.PROCESSING] == 1

    Journal.gates["batch job"].set()
    await running
    assert (await engine.jobs.get(summary)).state is S.ENQUEUED


async def test_deleting_a_batch_job_counts_as_finished_for_any_finished(engine: Engine) -> None:
    async with engine.jobs.options(continue_on=ContinueOn.ANY_FINISHED).batch() as batch:
        first = await batch.enqueue(Recorder.record, 1)
        second = await batch.enqueue(Recorder.record, 2)
        summary = batch.then(Recorder.pair, "summary", "sent")

    await engine.jobs.delete(first)
    assert (await engine.jobs.get(summary)).state is S.AWAITING
    await engine.jobs.delete(second)

    assert (await engine.jobs.get(summary)).state is S.ENQUEUED


async def test_empty_batch_with_a_continuation_runs_it_at_once(engine: Engine) -> None:
    async with engine.jobs.batch() as batch:
        summary = batch.then(Recorder.pair, "empty", "batch")

    assert (await engine.jobs.get(summary)).state is S.ENQUEUED
    assert (await engine.jobs.get_batch(batch.id)).total == 0


async def test_get_batch_of_unknown_id_raises_batch_not_found(engine: Engine) -> None:
    with pytest.raises(BatchNotFound):
        await engine.jobs.get_batch(BatchId(uuid4()))
