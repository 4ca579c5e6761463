"""The synchronous port over every adapter: callable where an `await` is not possible,
including from the thread of a running event loop, without deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import uuid4

import pytest

from application.jobs import InvalidArguments, JobId, JobNotFound, JobState, SyncJobService
from infrastructure.jobs.sync_port import LoopThreadJobService
from tests.contract.conftest import Engine
from tests.contract.handlers import Journal, Recorder


@pytest.fixture
def sync_jobs(engine: Engine) -> Iterator[LoopThreadJobService]:
    port = LoopThreadJobService(engine.backend.jobs)
    yield port
    port.close()


async def test_a_call_from_the_thread_of_a_running_loop_returns_and_the_job_runs(
    engine: Engine, sync_jobs: LoopThreadJobService
) -> None:
    # Given a coroutine on the test's running loop, which calls the port without awaiting
    job_id = sync_jobs.enqueue(Recorder.record, 4)

    await engine.drain()

    assert Journal.calls == [("record", 4)]
    assert sync_jobs.get(job_id).state is JobState.SUCCEEDED


async def test_calls_from_many_threads_at_once_each_create_their_job(
    engine: Engine, sync_jobs: LoopThreadJobService
) -> None:
    ids = await asyncio.gather(
        *(asyncio.to_thread(sync_jobs.enqueue, Recorder.record, n) for n in range(8))
    )

    await engine.drain()

    assert len(set(ids)) == 8
    assert sorted(v for v in Journal.values("record") if isinstance(v, int)) == list(range(8))


async def test_errors_of_the_async_port_reach_the_caller_unchanged(
    engine: Engine, sync_jobs: LoopThreadJobService
) -> None:
    port: SyncJobService = sync_jobs  # typed as the port: mypy checks handler arguments
    with pytest.raises(InvalidArguments):
        port.enqueue(Recorder.record, 1, 2)  # type: ignore[call-arg]
    with pytest.raises(JobNotFound):
        port.get(JobId(uuid4()))


async def test_a_batch_block_creates_its_jobs_at_its_end(
    engine: Engine, sync_jobs: LoopThreadJobService
) -> None:
    with sync_jobs.batch() as batch:
        first = batch.enqueue(Recorder.record, 1)
        batch.then(Recorder.record, 2)

    await engine.drain()

    assert Journal.values("record") == [1, 2]
    assert sync_jobs.get(first).batch_id == batch.id


async def test_a_call_from_the_ports_own_loop_thread_is_refused_not_a_deadlock(
    engine: Engine, sync_jobs: LoopThreadJobService
) -> None:
    async def reenter() -> JobId:
        return sync_jobs.enqueue(Recorder.record, 1)

    with pytest.raises(RuntimeError, match="own loop thread"):
        sync_jobs.loop.run(reenter())
