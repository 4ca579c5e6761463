"""Permanent errors are not retried: `DoNotRetry` (a business record that is gone among them),
and the exception types a retry policy names."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.jobs import JobState, OnExhausted, RetryPolicy
from tests.contract.conftest import Engine
from tests.contract.handlers import Journal, Recorder

RETRYING = RetryPolicy(attempts=5, delays=(1,))


@pytest.mark.smoke
async def test_a_handler_raising_do_not_retry_fails_at_once_with_its_reason(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.options(retry=RETRYING).enqueue(Recorder.give_up, "bad input")

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert Journal.calls == [("give_up", "bad input")]
    assert (view.state, view.attempt) == (JobState.FAILED, 1)
    assert view.history[-1].reason == "not retried: DoNotRetry"
    assert view.error is not None
    assert view.error.message == "bad input"


async def test_a_job_whose_business_record_is_gone_fails_at_once(engine: Engine) -> None:
    invoice_id = uuid4()
    job_id = await engine.jobs.options(retry=RETRYING).enqueue(Recorder.remind, invoice_id)

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert (view.state, view.attempt) == (JobState.FAILED, 1)
    assert view.history[-1].reason == "not retried: NotFound"
    assert view.error is not None
    assert str(invoice_id) in view.error.message


async def test_an_exception_type_the_policy_gives_up_on_is_not_retried(engine: Engine) -> None:
    policy = RetryPolicy(attempts=5, delays=(1,), give_up_on=(LookupError, RuntimeError))
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.fail, "boom")

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert (view.state, view.attempt) == (JobState.FAILED, 1)


async def test_with_retry_on_only_those_exception_types_are_retried(engine: Engine) -> None:
    policy = RetryPolicy(attempts=3, delays=(0,), retry_on=("builtins.ValueError",))
    retried = await engine.jobs.options(retry=policy).enqueue(Recorder.fail_async, "again")
    given_up = await engine.jobs.options(retry=policy).enqueue(Recorder.fail, "once")

    await engine.drain()

    assert (await engine.jobs.get(retried)).attempt == 3
    assert Journal.values("fail") == ["once"]
    assert (await engine.jobs.get(given_up)).attempt == 1


async def test_a_permanent_failure_goes_where_the_policy_sends_exhausted_jobs(
    engine: Engine,
) -> None:
    policy = RetryPolicy(attempts=5, on_exhausted=OnExhausted.DELETE)
    job_id = await engine.jobs.options(retry=policy).enqueue(Recorder.give_up, "gone")

    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is JobState.DELETED
