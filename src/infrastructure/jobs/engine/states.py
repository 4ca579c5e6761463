"""The job state machine: which transitions are allowed, and the rules that pick a target state.

Pure functions; every store applies them, so all adapters share one set of semantics.
"""

from __future__ import annotations

import datetime as dt
import random

from application.jobs import ContinueOn, InvalidTransition, JobState, OnExhausted, RetryPolicy

S = JobState

ALLOWED: dict[JobState, frozenset[JobState]] = {
    S.SCHEDULED: frozenset({S.ENQUEUED, S.DELETED}),
    S.AWAITING: frozenset({S.ENQUEUED, S.DELETED}),
    S.ENQUEUED: frozenset({S.PROCESSING, S.DELETED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED, S.DELETED, S.SCHEDULED, S.ENQUEUED}),
    S.SUCCEEDED: frozenset({S.ENQUEUED, S.DELETED}),
    S.FAILED: frozenset({S.ENQUEUED, S.DELETED}),
    S.DELETED: frozenset({S.ENQUEUED}),
}

ACTIVE_STATES = frozenset({S.SCHEDULED, S.AWAITING, S.ENQUEUED, S.PROCESSING})
WAITING_STATES = frozenset({S.SCHEDULED, S.AWAITING, S.ENQUEUED})
"""States of a job that a worker of its queue will take, now or later."""
"""A job in one of these holds its unique key."""

NOT_STARTED = frozenset({S.SCHEDULED, S.AWAITING, S.ENQUEUED})
"""A job in one of these expires at its deadline."""

EXPIRED = "expired"
"""The reason of a job deleted because its deadline passed before it started."""


def check_transition(job_id: object, current: JobState, to: JobState) -> None:
    """Raises InvalidTransition unless `current -> to` is allowed."""
    if to not in ALLOWED[current]:
        raise InvalidTransition(f"job {job_id} cannot move from {current} to {to}")


def continuation_start(parent_state: JobState, continue_on: ContinueOn) -> tuple[JobState, str]:
    """The state a continuation starts in, given its parent's state now."""
    if parent_state is S.SUCCEEDED or (
        parent_state.is_final and continue_on is ContinueOn.ANY_FINISHED
    ):
        return S.ENQUEUED, f"parent {parent_state}"
    if parent_state is S.DELETED:
        return S.DELETED, "parent was deleted"
    return S.AWAITING, "awaiting parent"


def continuation_release(
    parent_state: JobState, continue_on: ContinueOn
) -> tuple[JobState, str] | None:
    """What an awaiting continuation does when its parent reaches `parent_state`, if anything."""
    state, reason = continuation_start(parent_state, continue_on)
    return None if state is S.AWAITING else (state, reason)


def batch_release(states: list[JobState], continue_on: ContinueOn) -> tuple[JobState, str] | None:
    """Whether a batch continuation is released, given the states of the batch's jobs."""
    if not all(state.is_final for state in states):
        return None
    if continue_on is ContinueOn.ANY_FINISHED:
        return S.ENQUEUED, "batch finished"
    if all(state is S.SUCCEEDED for state in states):
        return S.ENQUEUED, "batch succeeded"
    return None


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> dt.timedelta:
    """How long to wait before retry number `attempt` (1 for the first retry)."""
    if policy.delays:
        return dt.timedelta(seconds=policy.delays[min(attempt, len(policy.delays)) - 1])
    delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return dt.timedelta(seconds=delay * (1 - policy.jitter * rng.random()))


def after_failure(
    policy: RetryPolicy,
    attempt: int,
    now: dt.datetime,
    rng: random.Random,
    error: BaseException | None = None,
) -> tuple[JobState, dt.datetime | None, str]:
    """Where a job goes after its execution number `attempt` failed (raising `error`):
    state, run_at, reason."""
    if error is not None and not policy.retries(error):
        state, _ = _exhausted(policy, attempt)
        return state, None, f"not retried: {type(error).__name__}"
    if attempt < policy.attempts:
        run_at = now + retry_delay(policy, attempt, rng)
        return S.SCHEDULED, run_at, f"retry {attempt} of {policy.attempts - 1}"
    state, reason = _exhausted(policy, attempt)
    return state, None, reason


def after_lease_expired(policy: RetryPolicy, attempt: int) -> tuple[JobState, str]:
    """Where a job goes when its worker vanished during execution number `attempt`: back to
    its queue at once, or, with no attempts left, where its policy sends exhausted jobs."""
    if attempt < policy.attempts:
        return S.ENQUEUED, "rescued: lease expired"
    state, reason = _exhausted(policy, attempt)
    return state, f"lease expired; {reason}"


def _exhausted(policy: RetryPolicy, attempt: int) -> tuple[JobState, str]:
    state = S.DELETED if policy.on_exhausted is OnExhausted.DELETE else S.FAILED
    return state, f"failed after {attempt} attempt{'s' if attempt > 1 else ''}"
