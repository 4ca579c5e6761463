"""Job middleware on every backend: the hooks around enqueue and perform, the state election
(a dead-letter queue instead of `failed`, a vetoed delete, no rerun after a crash), and a
failing middleware contained."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from application.jobs import InvalidTransition, JobState, JSONValue, RetryPolicy
from infrastructure.jobs.engine.middleware import Enqueue, JobMiddleware, StateChange
from infrastructure.jobs.engine.model import Job
from tests.contract.conftest import DEAD_LETTER, LEASE, Engine
from tests.contract.handlers import Journal, Recorder

ONE_ATTEMPT = RetryPolicy(attempts=1)


class Recording(JobMiddleware):
    """Writes down every hook it sees, in order."""

    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    def before_enqueue(self, enqueue: Enqueue) -> None:
        self.seen.append(f"{self.name} before_enqueue {enqueue.operation}")

    def after_enqueue(self, enqueue: Enqueue, *, error: BaseException | None) -> None:
        self.seen.append(f"{self.name} after_enqueue created={enqueue.created}")

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        self.seen.append(f"{self.name} before_perform {job.handler} attempt={job.attempt}")

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        self.seen.append(f"{self.name} after_perform result={result} error={error!r}")

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        self.seen.append(f"{self.name} elect_state {change.state}")
        return change


class DeadLetter(JobMiddleware):
    """After the last attempt, parks the job on the dead-letter queue instead of failing it."""

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        if change.state is JobState.FAILED and job.queue != DEAD_LETTER:
            return StateChange(JobState.ENQUEUED, "dead-lettered", queue=DEAD_LETTER)
        return change


class KeepRecords(JobMiddleware):
    """Operators may not delete `Recorder.record` jobs."""

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        if change.state is JobState.DELETED and job.handler == "Recorder.record":
            return StateChange(job.state, "records are kept")
        return change


class NoRerunAfterCrash(JobMiddleware):
    """A job whose worker vanished fails instead of running again (not idempotent)."""

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        if change.reason.startswith("rescued"):
            return StateChange(JobState.FAILED, "worker vanished; not run again")
        return change


class Broken(JobMiddleware):
    def before_enqueue(self, enqueue: Enqueue) -> None:
        raise RuntimeError("broken before_enqueue")

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        raise RuntimeError("broken after_perform")

    def elect_state(self, job: Job, change: StateChange) -> StateChange:
        return StateChange(JobState.AWAITING, "not a state a processing job may move to")


@pytest.mark.smoke
async def test_hooks_run_in_order_around_enqueue_and_perform(engine: Engine) -> None:
    seen: list[str] = []
    hooked = engine.with_middleware(Recording("a", seen), Recording("b", seen))

    await hooked.jobs.enqueue(Recorder.record, 7)  # returns twice its value
    await hooked.worker.run_once()

    assert seen == [
        "a before_enqueue enqueue",
        "b before_enqueue enqueue",
        "b after_enqueue created=[True]",
        "a after_enqueue created=[True]",
        "a before_perform Recorder.record attempt=1",
        "b before_perform Recorder.record attempt=1",
        "b after_perform result=14 error=None",
        "a after_perform result=14 error=None",
        "a elect_state succeeded",
        "b elect_state succeeded",
    ]


async def test_after_perform_sees_the_exception_and_election_the_retry(engine: Engine) -> None:
    seen: list[str] = []
    hooked = engine.with_middleware(Recording("a", seen))

    await hooked.jobs.enqueue(Recorder.fail, "boom")
    await hooked.worker.run_once()

    assert seen[-2:] == [
        "a after_perform result=None error=RuntimeError('boom')",
        "a elect_state scheduled",
    ]


async def test_unique_duplicate_is_seen_as_not_created(engine: Engine) -> None:
    seen: list[str] = []
    hooked = engine.with_middleware(Recording("a", seen))
    unique = hooked.jobs.options(unique_key="only-one")

    first = await unique.enqueue(Recorder.record, 1)
    again = await unique.enqueue(Recorder.record, 1)

    assert again == first
    assert seen[-1] == "a after_enqueue created=[False]"


@pytest.mark.smoke
async def test_state_election_moves_an_exhausted_job_to_a_dead_letter_queue(
    engine: Engine,
) -> None:
    hooked = engine.with_middleware(DeadLetter())
    job_id = await hooked.jobs.options(retry=ONE_ATTEMPT).enqueue(Recorder.fail, "for good")

    await hooked.worker.run_once()

    view = await engine.jobs.get(job_id)
    assert (view.state, view.queue) == (JobState.ENQUEUED, DEAD_LETTER)
    assert view.history[-1].reason == "dead-lettered"
    assert view.history[-1].data == {"queue": DEAD_LETTER}
    # a worker serving the dead-letter queue gets it; this time it fails for good
    await hooked.worker.run_once()
    assert (await engine.jobs.get(job_id)).state is JobState.FAILED
    assert Journal.values("fail") == ["for good", "for good"]


async def test_a_failing_middleware_is_logged_and_left_out(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    hooked = engine.with_middleware(Broken())

    with caplog.at_level(logging.ERROR, logger="infrastructure.jobs.engine.middleware"):
        job_id = await hooked.jobs.enqueue(Recorder.record, 3)
        await hooked.worker.run_once()

    assert (await engine.jobs.get(job_id)).state is JobState.SUCCEEDED
    failures = [r.getMessage() for r in caplog.records]
    assert "middleware Broken failed in before_enqueue" in failures
    assert "middleware Broken failed in after_perform" in failures
    assert "middleware Broken failed in elect_state; its choice is ignored" in failures


async def test_state_election_vetoes_an_operators_delete(engine: Engine) -> None:
    hooked = engine.with_middleware(KeepRecords())
    kept = await hooked.jobs.enqueue(Recorder.record, 1)
    other = await hooked.jobs.enqueue(Recorder.pair, "a", "b")

    with pytest.raises(InvalidTransition, match="records are kept"):
        await hooked.jobs.delete(kept)
    await hooked.jobs.delete(other)

    assert (await engine.jobs.get(kept)).state is JobState.ENQUEUED
    assert (await engine.jobs.get(other)).state is JobState.DELETED


async def test_state_election_applies_to_the_rescue_of_a_vanished_worker(engine: Engine) -> None:
    hooked = engine.with_middleware(NoRerunAfterCrash())
    job_id = await hooked.jobs.enqueue(Recorder.record, 5)
    # a worker claims the job and vanishes
    await engine.store.acquire(
        ["default"], now=engine.clock.now(), lease=LEASE, limit=1, server_id="gone"
    )

    engine.clock.advance(LEASE + dt.timedelta(seconds=1))
    await hooked.watchdog.tick()

    view = await engine.jobs.get(job_id)
    assert view.state is JobState.FAILED
    assert view.history[-1].reason == "worker vanished; not run again"
