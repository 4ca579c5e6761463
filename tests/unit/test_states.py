"""The job state machine: allowed transitions, continuation and batch rules, retry timing."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from application.jobs import ContinueOn, InvalidTransition, JobState, OnExhausted, RetryPolicy
from infrastructure.jobs.engine.states import (
    ACTIVE_STATES,
    after_failure,
    batch_release,
    check_transition,
    continuation_release,
    continuation_start,
    retry_delay,
)

S = JobState
NOW = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)

EXPECTED: set[tuple[JobState, JobState]] = {
    # created as scheduled or awaiting; the scheduler or the parent enqueues them, or deleted
    (S.SCHEDULED, S.ENQUEUED),
    (S.SCHEDULED, S.DELETED),
    (S.AWAITING, S.ENQUEUED),
    (S.AWAITING, S.DELETED),
    # a worker claims it
    (S.ENQUEUED, S.PROCESSING),
    (S.ENQUEUED, S.DELETED),
    # outcome, retry (scheduled), release or rescue (enqueued), cancellation (deleted)
    (S.PROCESSING, S.SUCCEEDED),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.DELETED),
    (S.PROCESSING, S.SCHEDULED),
    (S.PROCESSING, S.ENQUEUED),
    # final states can be requeued; succeeded and failed can be deleted
    (S.SUCCEEDED, S.ENQUEUED),
    (S.SUCCEEDED, S.DELETED),
    (S.FAILED, S.ENQUEUED),
    (S.FAILED, S.DELETED),
    (S.DELETED, S.ENQUEUED),
}


@pytest.mark.parametrize(("current", "to"), sorted(itertools.product(S, S)))
def test_transition_is_allowed_exactly_when_the_table_says_so(
    current: JobState, to: JobState
) -> None:
    if (current, to) in EXPECTED:
        check_transition("job", current, to)
    else:
        with pytest.raises(InvalidTransition, match=f"from {current} to {to}"):
            check_transition("job", current, to)


def test_nothing_moves_back_to_awaiting_and_only_a_claim_reaches_processing() -> None:
    assert not any(to is S.AWAITING for _, to in EXPECTED)
    assert {current for current, to in EXPECTED if to is S.PROCESSING} == {S.ENQUEUED}


def test_active_states_are_the_unfinished_ones() -> None:
    assert {state for state in S if not state.is_final} == ACTIVE_STATES
    assert {state for state in S if state.is_final} == {S.SUCCEEDED, S.FAILED, S.DELETED}


# --- continuations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "continue_on", "expected"),
    [
        (S.SUCCEEDED, ContinueOn.SUCCESS, S.ENQUEUED),
        (S.SUCCEEDED, ContinueOn.ANY_FINISHED, S.ENQUEUED),
        (S.FAILED, ContinueOn.SUCCESS, S.AWAITING),
        (S.FAILED, ContinueOn.ANY_FINISHED, S.ENQUEUED),
        (S.DELETED, ContinueOn.SUCCESS, S.DELETED),
        (S.DELETED, ContinueOn.ANY_FINISHED, S.ENQUEUED),
        (S.ENQUEUED, ContinueOn.SUCCESS, S.AWAITING),
        (S.PROCESSING, ContinueOn.ANY_FINISHED, S.AWAITING),
        (S.SCHEDULED, ContinueOn.ANY_FINISHED, S.AWAITING),
        (S.AWAITING, ContinueOn.SUCCESS, S.AWAITING),
    ],
)
def test_continuation_starts_in_a_state_given_by_its_parent(
    parent: JobState, continue_on: ContinueOn, expected: JobState
) -> None:
    state, reason = continuation_start(parent, continue_on)

    assert state is expected
    assert reason


def test_continuation_is_released_only_when_it_leaves_awaiting() -> None:
    assert continuation_release(S.PROCESSING, ContinueOn.SUCCESS) is None
    assert continuation_release(S.FAILED, ContinueOn.SUCCESS) is None
    assert continuation_release(S.SCHEDULED, ContinueOn.ANY_FINISHED) is None
    assert continuation_release(S.SUCCEEDED, ContinueOn.SUCCESS) == (S.ENQUEUED, "parent succeeded")
    assert continuation_release(S.FAILED, ContinueOn.ANY_FINISHED) == (S.ENQUEUED, "parent failed")
    assert continuation_release(S.DELETED, ContinueOn.SUCCESS) == (S.DELETED, "parent was deleted")


# --- batches -------------------------------------------------------------------------------------


def test_batch_continuation_waits_while_any_job_is_unfinished() -> None:
    for unfinished in (S.SCHEDULED, S.ENQUEUED, S.PROCESSING, S.AWAITING):
        for continue_on in ContinueOn:
            assert batch_release([S.SUCCEEDED, unfinished], continue_on) is None


def test_batch_continuation_on_success_needs_every_job_succeeded() -> None:
    assert batch_release([S.SUCCEEDED, S.SUCCEEDED], ContinueOn.SUCCESS) == (
        S.ENQUEUED,
        "batch succeeded",
    )
    assert batch_release([S.SUCCEEDED, S.FAILED], ContinueOn.SUCCESS) is None
    assert batch_release([S.SUCCEEDED, S.DELETED], ContinueOn.SUCCESS) is None


def test_batch_continuation_on_any_finished_runs_once_all_are_final() -> None:
    assert batch_release([S.SUCCEEDED, S.FAILED, S.DELETED], ContinueOn.ANY_FINISHED) == (
        S.ENQUEUED,
        "batch finished",
    )


def test_empty_batch_releases_its_continuation() -> None:
    assert batch_release([], ContinueOn.SUCCESS) is not None


# --- retry timing --------------------------------------------------------------------------------


def seconds(delay: dt.timedelta) -> float:
    return delay.total_seconds()


def test_explicit_delays_are_used_in_order_and_the_last_repeats() -> None:
    policy = RetryPolicy(attempts=10, delays=(30, 60, 120))
    rng = random.Random(1)

    assert [seconds(retry_delay(policy, n, rng)) for n in range(1, 6)] == [30, 60, 120, 120, 120]


def test_explicit_delays_have_no_jitter() -> None:
    policy = RetryPolicy(delays=(30,), jitter=1.0)

    assert {seconds(retry_delay(policy, 1, random.Random(seed))) for seed in range(20)} == {30}


def test_backoff_doubles_and_is_capped_without_jitter() -> None:
    policy = RetryPolicy(base_delay=15, max_delay=100, jitter=0)
    rng = random.Random(1)

    assert [seconds(retry_delay(policy, n, rng)) for n in range(1, 6)] == [15, 30, 60, 100, 100]


@pytest.mark.parametrize("attempt", [1, 2, 3, 8])
def test_backoff_jitter_takes_off_at_most_its_share(attempt: int) -> None:
    policy = RetryPolicy(base_delay=10, max_delay=300, jitter=0.25)
    full = min(300, 10 * 2 ** (attempt - 1))
    rng = random.Random(attempt)

    delays = [seconds(retry_delay(policy, attempt, rng)) for _ in range(200)]

    assert all(full * 0.75 <= d <= full for d in delays)
    assert len(set(delays)) > 1  # it does vary


def test_backoff_with_a_seeded_random_source_is_reproducible() -> None:
    policy = RetryPolicy()

    first = [retry_delay(policy, n, random.Random(7)) for n in range(1, 5)]
    again = [retry_delay(policy, n, random.Random(7)) for n in range(1, 5)]

    assert first == again


def test_failure_with_attempts_left_schedules_a_retry() -> None:
    policy = RetryPolicy(attempts=3, delays=(30, 60))

    assert after_failure(policy, 1, NOW, random.Random(0)) == (
        S.SCHEDULED,
        NOW + dt.timedelta(seconds=30),
        "retry 1 of 2",
    )
    assert after_failure(policy, 2, NOW, random.Random(0)) == (
        S.SCHEDULED,
        NOW + dt.timedelta(seconds=60),
        "retry 2 of 2",
    )


def test_failure_on_the_last_attempt_fails_the_job() -> None:
    policy = RetryPolicy(attempts=3, delays=(30,))

    assert after_failure(policy, 3, NOW, random.Random(0)) == (
        S.FAILED,
        None,
        "failed after 3 attempts",
    )
    assert after_failure(RetryPolicy.none(), 1, NOW, random.Random(0)) == (
        S.FAILED,
        None,
        "failed after 1 attempt",
    )


def test_failure_on_the_last_attempt_deletes_the_job_when_the_policy_says_so() -> None:
    policy = RetryPolicy(attempts=2, on_exhausted=OnExhausted.DELETE)

    state, run_at, reason = after_failure(policy, 2, NOW, random.Random(0))

    assert (state, run_at, reason) == (S.DELETED, None, "failed after 2 attempts")


@pytest.mark.parametrize(
    "arguments",
    [{"attempts": 0}, {"jitter": 1.5}, {"jitter": -0.1}, {"delays": (10, -1)}, {"base_delay": -1}],
)
def test_retry_policy_refuses_nonsense(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**arguments)  # type: ignore[arg-type]
