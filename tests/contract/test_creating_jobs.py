"""Creating jobs: enqueue, schedule, options, argument checking, the allow-list; get, delete,
requeue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from application.jobs import (
    HandlerNotRegistered,
    InvalidArguments,
    InvalidSchedule,
    InvalidTransition,
    JobId,
    JobNotFound,
    JobState,
    PayloadTooLarge,
    RetryPolicy,
    Transition,
)
from infrastructure.jobs.engine.client import EngineJobService
from tests.contract.conftest import START, Engine
from tests.contract.handlers import (
    LOW_RETRY,
    Blocking,
    Color,
    Journal,
    Money,
    Point,
    Recorder,
    Registered,
    Unregistered,
    build_registry,
)

S = JobState


def states(history: tuple[Transition, ...]) -> list[JobState]:
    return [t.state for t in history]


# --- enqueue and get ---------------------------------------------------------------------------


@pytest.mark.smoke
async def test_enqueued_job_runs_once_with_its_arguments_and_stores_the_result(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record, 21)

    view = await engine.jobs.get(job_id)
    assert view.state is S.ENQUEUED
    assert view.handler == "Recorder.record"
    assert view.args == [21]
    assert view.created_at == START

    await engine.drain()

    assert Journal.calls == [("record", 21)]
    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.result == 42
    assert view.attempt == 1
    assert view.error is None


async def test_async_handler_runs_and_its_result_is_stored(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record_async, 5)

    await engine.drain()

    assert Journal.calls == [("record_async", 5)]
    assert (await engine.jobs.get(job_id)).result == 15


async def test_get_of_unknown_job_raises_job_not_found(engine: Engine) -> None:
    with pytest.raises(JobNotFound):
        await engine.jobs.get(JobId(uuid4()))


async def test_history_records_every_transition_with_time_and_reason(engine: Engine) -> None:
    job_id = await engine.jobs.schedule(dt.timedelta(minutes=5), Recorder.record, 1)
    engine.clock.advance(dt.timedelta(minutes=5))
    await engine.scheduler.tick()
    engine.clock.advance(dt.timedelta(seconds=2))
    await engine.worker.run_once()

    history = (await engine.jobs.get(job_id)).history

    assert [(t.state, t.at) for t in history] == [
        (S.SCHEDULED, START),
        (S.ENQUEUED, START + dt.timedelta(minutes=5)),
        (S.PROCESSING, START + dt.timedelta(minutes=5, seconds=2)),
        (S.SUCCEEDED, START + dt.timedelta(minutes=5, seconds=2)),
    ]
    assert all(t.reason for t in history)
    assert history[2].data.get("attempt") == 1


async def test_failure_records_the_error_and_the_reason(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "boom")

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None
    assert view.error.type == "builtins.RuntimeError"
    assert view.error.message == "boom"
    assert "RuntimeError: boom" in view.error.traceback
    assert view.history[-1].reason == "failed after 1 attempt"
    assert view.history[-1].data["message"] == "boom"


# --- schedule ------------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_job_scheduled_with_a_delay_runs_only_when_due(engine: Engine) -> None:
    job_id = await engine.jobs.schedule(dt.timedelta(hours=24), Recorder.record, 1)

    view = await engine.jobs.get(job_id)
    assert view.state is S.SCHEDULED
    assert view.run_at == START + dt.timedelta(hours=24)

    engine.clock.advance(dt.timedelta(hours=23, minutes=59, seconds=59))
    await engine.drain()
    assert Journal.calls == []
    assert (await engine.jobs.get(job_id)).state is S.SCHEDULED

    engine.clock.advance(dt.timedelta(seconds=1))
    await engine.drain()
    assert Journal.calls == [("record", 1)]
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED


async def test_job_scheduled_at_an_aware_instant_runs_at_that_instant(engine: Engine) -> None:
    due = dt.datetime(2026, 1, 5, 12, 30, tzinfo=ZoneInfo("Asia/Kolkata"))  # 07:00 UTC
    later = dt.datetime(2026, 1, 5, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 15:00 UTC

    past_id = await engine.jobs.schedule(due, Recorder.record, 1)
    future_id = await engine.jobs.schedule(later, Recorder.record, 2)

    assert (await engine.jobs.get(future_id)).run_at == dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC)
    await engine.drain()
    assert Journal.calls == [("record", 1)]
    assert (await engine.jobs.get(past_id)).state is S.SUCCEEDED

    engine.clock.set(dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC))
    await engine.drain()
    assert Journal.calls == [("record", 1), ("record", 2)]


async def test_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule, match="naive"):
        await engine.jobs.schedule(dt.datetime(2026, 1, 6, 9, 0), Recorder.record, 1)


async def test_negative_delay_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule):
        await engine.jobs.schedule(dt.timedelta(seconds=-1), Recorder.record, 1)


# --- argument checking ---------------------------------------------------------------------------


async def test_argument_of_the_wrong_type_is_refused_naming_it(engine: Engine) -> None:
    with pytest.raises(InvalidArguments) as caught:
        await engine.jobs.enqueue(Recorder.record, "not a number")  # type: ignore[arg-type]

    assert caught.value.argument == "value"
    assert "'value'" in str(caught.value)


async def test_missing_argument_is_refused_naming_it(engine: Engine) -> None:
    with pytest.raises(InvalidArguments) as caught:
        await engine.jobs.enqueue(Recorder.pair, "a")  # type: ignore[call-arg]

    assert caught.value.argument == "second"


async def test_unknown_keyword_is_refused_naming_it(engine: Engine) -> None:
    with pytest.raises(InvalidArguments) as caught:
        await engine.jobs.enqueue(Recorder.pair, "a", "b", third="c")  # type: ignore[call-arg]

    assert caught.value.argument == "third"


async def test_argument_that_is_not_json_is_refused_naming_it(engine: Engine) -> None:
    with pytest.raises(InvalidArguments) as caught:
        await engine.jobs.enqueue(Recorder.anything, value=object())

    assert caught.value.argument == "value"
    assert "'value'" in str(caught.value)


async def test_refused_arguments_also_refuse_schedule_and_continuations(engine: Engine) -> None:
    parent = await engine.jobs.enqueue(Recorder.record, 1)
    with pytest.raises(InvalidArguments):
        await engine.jobs.schedule(dt.timedelta(1), Recorder.record, "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments):
        await engine.jobs.continue_with(parent, Recorder.record, "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments):
        await engine.jobs.add_or_update_recurring(
            "r",
            "* * * * *",
            Recorder.record,
            "x",  # type: ignore[arg-type]
        )
    assert await engine.jobs.list_recurring() == []


async def test_json_types_reach_the_handler_as_the_annotated_types(engine: Engine) -> None:
    when = dt.datetime(2026, 2, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
    ident = UUID("12345678-1234-5678-1234-567812345678")
    job_id = await engine.jobs.enqueue(
        Recorder.typed,
        "héllo",
        7,
        2.5,
        True,
        None,
        [1, 2, 3],
        {"a": 1.5},
        when,
        dt.date(2026, 2, 1),
        ident,
        Decimal("10.25"),
        Color.GREEN,
        Point(x=1, y=2),
        money=Money(amount=Decimal("99.99"), currency="EUR"),
    )

    await engine.drain()

    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED
    received = Journal.received
    assert received == {
        "text": "héllo",
        "number": 7,
        "ratio": 2.5,
        "flag": True,
        "nothing": None,
        "items": [1, 2, 3],
        "mapping": {"a": 1.5},
        "when": when,
        "day": dt.date(2026, 2, 1),
        "ident": ident,
        "amount": Decimal("10.25"),
        "color": Color.GREEN,
        "point": Point(x=1, y=2),
        "money": Money(amount=Decimal("99.99"), currency="EUR"),
    }
    assert type(received["when"]) is dt.datetime
    assert type(received["day"]) is dt.date
    assert type(received["ident"]) is UUID
    assert type(received["amount"]) is Decimal
    assert type(received["color"]) is Color
    assert type(received["point"]) is Point
    assert type(received["money"]) is Money


async def test_arguments_are_stored_as_json(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(
        Recorder.typed,
        "t",
        1,
        1.0,
        False,
        None,
        [],
        {},
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        dt.date(2026, 2, 1),
        UUID(int=1),
        Decimal("1.5"),
        Color.RED,
        Point(x=0, y=0),
        money=Money(amount=Decimal("2"), currency="USD"),
    )

    view = await engine.jobs.get(job_id)

    assert view.args[7:] == [
        "2026-02-01T00:00:00Z",
        "2026-02-01",
        "00000000-0000-0000-0000-000000000001",
        "1.5",
        "red",
        {"x": 0, "y": 0},
        {"amount": "2", "currency": "USD"},  # positional-or-keyword: stored positionally
    ]
    assert view.kwargs == {}


async def test_payload_over_the_limit_is_refused_naming_the_largest_argument(
    engine: Engine,
) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await engine.jobs.enqueue(Recorder.pair, "small", "x" * 70_000)

    assert caught.value.argument == "second"
    assert caught.value.size > caught.value.limit
    assert "'second'" in str(caught.value)


async def test_payload_limit_is_configurable(engine: Engine) -> None:
    small = EngineJobService(engine.store, engine.registry, engine.clock, payload_limit=20)

    await small.enqueue(Recorder.pair, "a", "b")
    with pytest.raises(PayloadTooLarge) as caught:
        await small.enqueue(Recorder.pair, "x" * 30, "b")

    assert caught.value.argument == "first"
    assert caught.value.limit == 20


# --- the allow-list ------------------------------------------------------------------------------


async def test_unregistered_handler_is_refused_at_enqueue(engine: Engine) -> None:
    with pytest.raises(HandlerNotRegistered):
        await engine.jobs.enqueue(Unregistered.run, 1)
    with pytest.raises(HandlerNotRegistered):
        await engine.jobs.schedule(dt.timedelta(1), Unregistered.run, 1)
    with pytest.raises(HandlerNotRegistered):
        await engine.jobs.add_or_update_recurring("r", "* * * * *", Unregistered.run, 1)


async def test_worker_runs_only_handlers_on_its_own_allow_list(engine: Engine) -> None:
    other_registry = build_registry()
    other_registry.register(Unregistered.run)
    other_client = EngineJobService(engine.store, other_registry, engine.clock)
    job_id = await other_client.options(retry=RetryPolicy.none()).enqueue(Unregistered.run, 1)

    await engine.drain()

    assert Journal.calls == []
    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None
    assert view.error.type.endswith("HandlerNotRegistered")


async def test_handler_parameters_named_like_port_options_are_still_callable(
    engine: Engine,
) -> None:
    job_id = await engine.jobs.enqueue(Recorder.with_port_names, queue="q", timezone="Mars/Base")
    await engine.jobs.add_or_update_recurring(
        "port-names", "0 * * * *", Recorder.with_port_names, "q2", timezone="Asia/Kolkata"
    )

    view = await engine.jobs.get(job_id)
    assert view.queue == "default"
    assert (view.args, view.kwargs) == (["q", "Mars/Base"], {})
    recurring = await engine.jobs.get_recurring("port-names")
    assert recurring.cron.timezone == "UTC"
    assert recurring.queue == "default"
    await engine.jobs.trigger_recurring("port-names")
    await engine.drain()
    assert sorted(Journal.values("with_port_names"), key=str) == [
        ("q", "Mars/Base"),
        ("q2", "Asia/Kolkata"),
    ]


# --- options -------------------------------------------------------------------------------------


async def test_options_come_from_the_registration_unless_given_per_call(engine: Engine) -> None:
    from_registration = await engine.jobs.enqueue(Registered.on_low, 1)
    per_call = await engine.jobs.options(
        queue="critical", retry=RetryPolicy(attempts=7), timeout=dt.timedelta(seconds=3)
    ).enqueue(Registered.on_low, 2)

    registered = await engine.jobs.get(from_registration)
    assert registered.queue == "low"
    assert registered.max_attempts == LOW_RETRY.attempts
    overridden = await engine.jobs.get(per_call)
    assert overridden.queue == "critical"
    assert overridden.max_attempts == 7


async def test_options_views_combine_and_leave_the_service_unchanged(engine: Engine) -> None:
    critical = engine.jobs.options(queue="critical")
    both = critical.options(unique_key="k")

    first = await both.enqueue(Recorder.record, 1)
    plain = await engine.jobs.enqueue(Recorder.record, 2)

    view = await engine.jobs.get(first)
    assert (view.queue, view.unique_key) == ("critical", "k")
    view = await engine.jobs.get(plain)
    assert (view.queue, view.unique_key) == ("default", None)


async def test_worker_takes_queues_in_priority_order(engine: Engine) -> None:
    await engine.jobs.options(queue="low").enqueue(Recorder.record, 3)
    await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.options(queue="critical").enqueue(Recorder.record, 1)
    await engine.jobs.options(queue="elsewhere").enqueue(Recorder.record, 99)
    single = engine.new_worker(concurrency=1)

    while await single.run_once():
        pass

    assert Journal.values("record") == [1, 2, 3]


@pytest.mark.smoke
async def test_unique_key_returns_the_active_job_until_it_finishes(engine: Engine) -> None:
    unique = engine.jobs.options(unique_key="welcome:42")
    first = await unique.enqueue(Recorder.record, 1)
    second = await unique.enqueue(Recorder.record, 2)
    other_key = await engine.jobs.options(unique_key="welcome:43").enqueue(Recorder.record, 3)

    assert second == first
    assert other_key != first

    await engine.drain()
    third = await unique.enqueue(Recorder.record, 4)

    assert third != first
    assert (await engine.jobs.get(third)).state is S.ENQUEUED
    assert sorted(Journal.values("record")) == [1, 3]  # type: ignore[type-var]


async def test_unique_key_is_held_by_scheduled_jobs_too(engine: Engine) -> None:
    unique = engine.jobs.options(unique_key="reminder")
    first = await unique.schedule(dt.timedelta(hours=1), Recorder.record, 1)

    assert await unique.enqueue(Recorder.record, 2) == first

    await engine.jobs.delete(first)
    assert await unique.enqueue(Recorder.record, 3) != first


async def test_requeue_never_makes_a_second_active_holder_of_a_unique_key(engine: Engine) -> None:
    """At most one active job holds a unique key (the SQL schema enforces it); a requeue that
    would make a second one is refused as an invalid transition."""
    unique = engine.jobs.options(unique_key="digest")
    first = await unique.enqueue(Recorder.record, 1)
    await engine.drain()
    second = await unique.enqueue(Recorder.record, 2)

    with pytest.raises(InvalidTransition, match=f"job {second} holds its unique key"):
        await engine.jobs.requeue(first)

    assert (await engine.jobs.get(first)).state is S.SUCCEEDED
    assert (await engine.jobs.get(second)).state is S.ENQUEUED


# --- delete and requeue --------------------------------------------------------------------------


@pytest.mark.smoke
async def test_deleted_job_never_runs(engine: Engine) -> None:
    enqueued = await engine.jobs.enqueue(Recorder.record, 1)
    scheduled = await engine.jobs.schedule(dt.timedelta(minutes=1), Recorder.record, 2)

    await engine.jobs.delete(enqueued)
    await engine.jobs.delete(scheduled)
    engine.clock.advance(dt.timedelta(minutes=2))
    await engine.drain()

    assert Journal.calls == []
    for job_id in (enqueued, scheduled):
        view = await engine.jobs.get(job_id)
        assert view.state is S.DELETED
        assert view.history[-1].reason == "deleted by request"


async def test_deleting_a_deleted_job_does_nothing(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Recorder.record, 1)
    await engine.jobs.delete(job_id)
    before = await engine.jobs.get(job_id)

    await engine.jobs.delete(job_id)

    assert (await engine.jobs.get(job_id)).history == before.history


async def test_delete_and_requeue_of_unknown_job_raise_job_not_found(engine: Engine) -> None:
    with pytest.raises(JobNotFound):
        await engine.jobs.delete(JobId(uuid4()))
    with pytest.raises(JobNotFound):
        await engine.jobs.requeue(JobId(uuid4()))


@pytest.mark.smoke
async def test_requeued_failed_job_runs_again(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Recorder.fail, "x")
    await engine.drain()
    assert (await engine.jobs.get(job_id)).state is S.FAILED

    await engine.jobs.requeue(job_id)
    assert (await engine.jobs.get(job_id)).state is S.ENQUEUED
    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert Journal.values("fail") == ["x", "x"]
    assert states(view.history) == [
        S.ENQUEUED,
        S.PROCESSING,
        S.FAILED,
        S.ENQUEUED,
        S.PROCESSING,
        S.FAILED,
    ]
    assert view.history[3].reason == "requeued by request"


async def test_requeue_brings_back_succeeded_deleted_and_scheduled_jobs(engine: Engine) -> None:
    succeeded = await engine.jobs.enqueue(Recorder.record, 1)
    await engine.drain()
    deleted = await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.delete(deleted)
    scheduled = await engine.jobs.schedule(dt.timedelta(days=1), Recorder.record, 3)

    for job_id in (succeeded, deleted, scheduled):
        await engine.jobs.requeue(job_id)
    await engine.drain()

    assert sorted(Journal.values("record")) == [1, 1, 2, 3]  # type: ignore[type-var]


async def test_requeue_of_a_processing_job_is_refused(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Blocking.hold, "busy")
    running = engine.start_worker()
    await Journal.started["busy"].wait()

    with pytest.raises(InvalidTransition):
        await engine.jobs.requeue(job_id)

    assert (await engine.jobs.get(job_id)).state is S.PROCESSING
    Journal.gates["busy"].set()
    await running
    assert (await engine.jobs.get(job_id)).state is S.SUCCEEDED
