"""Model-based test: the memory store and the SQL store (on SQLite) behave alike.

Hypothesis runs random sequences of operations on two engines at once, one per store, each
with its own fake clock moved identically, and after every step checks that

- both stores show every job alike: state, attempts, times, result, error, parent, batch and
  the whole history (state, reason, time and data of every transition), in `get` and in
  `list_jobs`;
- every recorded transition is one the state machine allows;
- no continuation started before its parent finished as its `continue_on` requires, and no
  batch continuation before its batch's jobs did (unless an operator requeued it).

Job ids are random, so jobs are compared by a logical index: the order in which the model
created them, the same in both engines.

Determinism by construction: every step first moves both clocks by `STEP`, so no two steps
share a time; the worker (and a crashing worker) claim every ready job at once (`CLAIM_ALL`),
so which jobs a claim takes never depends on how a store orders jobs with the same
`state_at`, and the claimed jobs are compared as a set; retry policies have explicit delays,
so there is no jitter.

Three divergences it found (a unique continuation of a deleted parent, a requeue onto a held
unique key, `run_at` after a success without a result) are contract tests now, and the rules
behind them are written once, in `engine/lifecycle.py`.

In CI the examples are derandomized (a fixed seed: every run tests the same sequences, so a
red build is a regression and not a lucky draw); locally each run draws new sequences and
Hypothesis's example database replays the failures it found.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from application.jobs import (
    BatchId,
    ContinueOn,
    JobFilter,
    JobId,
    JobsError,
    JobService,
    JobSort,
    JobState,
    JobSummary,
    JobView,
    OnExhausted,
    RetryPolicy,
)
from infrastructure.jobs.engine.states import ALLOWED
from infrastructure.jobs.memory.store import InMemoryJobStore
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.databases import IN_CI, empty_tables
from tests.model.harness import CLAIM_ALL, LEASE, QUEUES, ModelEngine, Steps, assemble

S = JobState

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "200"))
"""Examples per run; raise it for a longer search (`MODEL_EXAMPLES=2000`)."""
STEPS = 50
STEP = dt.timedelta(seconds=1)
"""How far both clocks move before every operation, so that no two steps share a time."""
KEYS = ("a", "b", "c")
"""Unique keys: few, so that keys collide often."""
UNKNOWN_JOB = JobId(UUID(int=1))

REQUEUED_BY_REQUEST = "requeued by request"
CREATION_STATES = frozenset({S.ENQUEUED, S.SCHEDULED, S.AWAITING, S.DELETED})
RELEASED_BY: dict[ContinueOn, frozenset[JobState]] = {
    ContinueOn.SUCCESS: frozenset({S.SUCCEEDED}),
    ContinueOn.ANY_FINISHED: frozenset({S.SUCCEEDED, S.FAILED, S.DELETED}),
}


# --- what the model generates ----------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """A job's arguments: how many attempts fail (9: all), whether a success returns a value
    (the SQL store finishes successes without a result on a path of their own)."""

    fails: int
    returns_value: bool


@dataclass(frozen=True)
class Options:
    """Per-call options: queue and an explicit retry policy (no jitter)."""

    queue: str
    attempts: int
    delay: int
    on_exhausted: OnExhausted

    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts, delays=(self.delay,), on_exhausted=self.on_exhausted
        )


# Each value is one draw from a short list: cheap to generate, and it shrinks to the first entry.
works = st.sampled_from(
    [Work(fails, returns_value) for fails in (0, 1, 2, 9) for returns_value in (True, False)]
)
options = st.sampled_from(
    [
        Options(queue, attempts, delay, on_exhausted)
        for queue in QUEUES
        for attempts in (1, 2, 3)
        for delay in (1, 7, 20)
        for on_exhausted in OnExhausted
    ]
)
keys = st.sampled_from([None, *KEYS])
picks = st.integers(0, 255)
"""A job of the model, as an index modulo the number of jobs."""
claiming_queues = st.sampled_from([QUEUES, QUEUES[:1], QUEUES[1:]])


# --- what the model compares -----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One recorded transition."""

    state: JobState
    reason: str
    at: dt.datetime
    data: object


@dataclass(frozen=True)
class Seen:
    """What `get` shows of one job, ids replaced by logical indexes."""

    state: JobState
    attempt: int
    max_attempts: int
    queue: str
    created_at: dt.datetime
    run_at: dt.datetime | None
    unique_key: str | None
    parent: int | None
    batch: int | None
    result: object
    error: tuple[str, str] | None
    progress: float
    history: tuple[Step, ...]


@dataclass(frozen=True)
class Listed:
    """What `list_jobs` shows of one job."""

    state: JobState
    state_at: dt.datetime
    created_at: dt.datetime
    run_at: dt.datetime | None
    attempt: int
    queue: str
    progress: float
    error_type: str | None


@dataclass
class BatchModel:
    members: list[int]
    continuation: int | None
    continue_on: ContinueOn


@dataclass
class Side:
    """One engine, and the ids its store gave by logical index."""

    name: str
    engine: ModelEngine
    jobs: list[JobId] = field(default_factory=list)
    index: dict[JobId, int] = field(default_factory=dict)
    batches: dict[BatchId, int] = field(default_factory=dict)

    def add(self, job_id: JobId) -> None:
        self.index[job_id] = len(self.jobs)
        self.jobs.append(job_id)


@dataclass(frozen=True)
class Outcome:
    """What an operation gave: a value, or the type of the port error it raised."""

    value: Any = None
    error: type[JobsError] | None = None


# --- the checks --------------------------------------------------------------------------------
def illegal_transitions(history: Sequence[Step]) -> list[str]:
    """Transitions the state machine does not allow; the first (creation) may be any start
    state."""
    found = [] if history[0].state in CREATION_STATES else [f"created as {history[0].state}"]
    for before, after in itertools.pairwise(history):
        if after.state not in ALLOWED[before.state]:
            found.append(f"{before.state} -> {after.state} ({after.reason!r} at {after.at})")
    return found


def first_start(history: Sequence[Step]) -> dt.datetime | None:
    """When the job was first claimed, unless an operator requeued it before (a requeue runs
    a job whatever its parent did)."""
    for step in history:
        if step.reason == REQUEUED_BY_REQUEST:
            return None
        if step.state is S.PROCESSING:
            return step.at
    return None


def reached(history: Sequence[Step], states: frozenset[JobState], by: dt.datetime) -> bool:
    return any(step.state in states and step.at <= by for step in history)


def early_starts(
    seen: Sequence[Seen],
    parents: dict[int, tuple[int, ContinueOn]],
    batches: Sequence[BatchModel],
) -> list[str]:
    """Continuations that started before their parent (or batch) finished as required."""
    found = []
    for child, (parent, continue_on) in parents.items():
        started = first_start(seen[child].history)
        if started and not reached(seen[parent].history, RELEASED_BY[continue_on], started):
            found.append(f"job {child} started at {started} before its parent {parent}")
    for number, batch in enumerate(batches):
        if batch.continuation is None:
            continue
        started = first_start(seen[batch.continuation].history)
        if started is None:
            continue
        waiting = [
            member
            for member in batch.members
            if not reached(seen[member].history, RELEASED_BY[batch.continue_on], started)
        ]
        if waiting:
            found.append(f"batch {number}'s continuation started at {started} before {waiting}")
    return found


# --- the machine -----------------------------------------------------------------------------
class StoresAgree(RuleBasedStateMachine):
    sql_store: ClassVar[SQLAlchemyJobStore | None] = None
    """The SQL store on the migrated SQLite database, shared by every example, its tables
    emptied for each (set by the test). One store, not one per example: each store builds
    its own tables, so its statements would miss SQLAlchemy's compiled cache."""

    def __init__(self) -> None:
        super().__init__()
        assert self.sql_store is not None
        self.runner = asyncio.Runner()
        self.loop = self.runner.get_loop()
        self.loop.set_default_executor(InlineExecutor())
        empty_tables(self.sql_store.database, self.sql_store.metadata)
        self.memory = Side("memory", assemble(InMemoryJobStore()))
        self.sql = Side("sql", assemble(self.sql_store))
        self.count = 0
        self.parents: dict[int, tuple[int, ContinueOn]] = {}
        self.batches: list[BatchModel] = []
        self.memory_seen: list[Seen] = []
        self.sql_seen: list[Seen] = []
        self.listed: list[Listed] = []
        self.changed = False
        Figures.examples += 1

    def teardown(self) -> None:
        for side in (self.memory, self.sql):
            side.engine.close()
        self.runner.close()

    def run(self, work: Awaitable[Any]) -> Any:
        """Run on the machine's loop (without `Runner.run`'s per-call signal set-up)."""
        return self.loop.run_until_complete(work)

    # --- running an operation on both engines ------------------------------------------------
    def both(self, act: Callable[[Side], Awaitable[Any]]) -> tuple[Outcome, Outcome]:
        """Move both clocks by `STEP`, then run `act` on each engine. The port's errors are
        outcomes to compare; any other exception fails the test."""

        self.changed = True

        async def on_both() -> list[Outcome]:
            outcomes = []
            for side in (self.memory, self.sql):
                side.engine.clock.advance(STEP)
                outcomes.append(await _outcome(act(side)))
            return outcomes

        memory, sql = self.run(on_both())
        assert memory.error == sql.error, f"memory: {memory}, sql: {sql}"
        return memory, sql

    def pick(self, pick: int) -> int:
        return pick % self.count

    def created(self, memory_id: JobId, sql_id: JobId) -> tuple[int, bool]:
        """The logical index of a job both engines returned, and whether it is new. A job
        that is new in one store must be new in the other (unique keys)."""
        known = self.memory.index.get(memory_id), self.sql.index.get(sql_id)
        assert known[0] == known[1], f"memory gave job {known[0]}, sql job {known[1]} (None: new)"
        if known[0] is not None:
            return known[0], False
        self.memory.add(memory_id)
        self.sql.add(sql_id)
        self.count += 1
        return self.count - 1, True

    # --- creating jobs -------------------------------------------------------------------------
    @rule(work=works, opts=options, key=keys)
    def enqueue(self, work: Work, opts: Options, key: str | None) -> None:
        memory, sql = self.both(
            lambda side: _with(side.engine.jobs, opts, key=key).enqueue(
                Steps.run, work.fails, work.returns_value
            )
        )
        self.created(memory.value, sql.value)

    @rule(work=works, opts=options, key=keys, delay=st.integers(0, 60))
    def schedule(self, work: Work, opts: Options, key: str | None, delay: int) -> None:
        when = dt.timedelta(seconds=delay)
        memory, sql = self.both(
            lambda side: _with(side.engine.jobs, opts, key=key).schedule(
                when, Steps.run, work.fails, work.returns_value
            )
        )
        self.created(memory.value, sql.value)

    @precondition(lambda self: self.count > 0)
    @rule(pick=picks, work=works, opts=options, key=keys, continue_on=st.sampled_from(ContinueOn))
    def continue_with(
        self, pick: int, work: Work, opts: Options, key: str | None, continue_on: ContinueOn
    ) -> None:
        parent = self.pick(pick)
        memory, sql = self.both(
            lambda side: _with(
                side.engine.jobs, opts, key=key, continue_on=continue_on
            ).continue_with(side.jobs[parent], Steps.run, work.fails, work.returns_value)
        )
        index, new = self.created(memory.value, sql.value)
        if new:
            self.parents[index] = (parent, continue_on)

    @rule(
        members=st.lists(works, max_size=3),
        then=st.none() | works,
        opts=options,
        continue_on=st.sampled_from(ContinueOn),
    )
    def batch(
        self, members: list[Work], then: Work | None, opts: Options, continue_on: ContinueOn
    ) -> None:
        async def act(side: Side) -> tuple[BatchId, list[JobId]]:
            jobs = _with(side.engine.jobs, opts, continue_on=continue_on)
            async with jobs.batch() as batch:
                ids = [await batch.enqueue(Steps.run, w.fails, w.returns_value) for w in members]
                if then is not None:
                    ids.append(batch.then(Steps.run, then.fails, then.returns_value))
            return batch.id, ids

        memory, sql = self.both(act)
        if not members and then is None:
            return  # nothing was created
        (memory_batch, memory_ids), (sql_batch, sql_ids) = memory.value, sql.value
        created = [self.created(m, s)[0] for m, s in zip(memory_ids, sql_ids, strict=True)]
        self.memory.batches[memory_batch] = self.sql.batches[sql_batch] = len(self.batches)
        continuation = created.pop() if then is not None else None
        self.batches.append(BatchModel(created, continuation, continue_on))

    # --- managing jobs -------------------------------------------------------------------------
    @precondition(lambda self: self.count > 0)
    @rule(pick=picks)
    def delete(self, pick: int) -> None:
        index = self.pick(pick)
        self.both(lambda side: side.engine.jobs.delete(side.jobs[index]))

    @precondition(lambda self: self.count > 0)
    @rule(pick=picks)
    def requeue(self, pick: int) -> None:
        index = self.pick(pick)
        self.both(lambda side: side.engine.jobs.requeue(side.jobs[index]))

    @rule(delete=st.booleans())
    def manage_unknown_job(self, delete: bool) -> None:
        memory, _ = self.both(
            lambda side: (
                side.engine.jobs.delete(UNKNOWN_JOB)
                if delete
                else side.engine.jobs.requeue(UNKNOWN_JOB)
            )
        )
        assert memory.error is not None

    # --- time and the engine's loops -----------------------------------------------------------
    @rule(seconds=st.integers(1, 2 * int(LEASE.total_seconds())))
    def advance_clock(self, seconds: int) -> None:
        for side in (self.memory, self.sql):
            side.engine.clock.advance(dt.timedelta(seconds=seconds))

    @rule()
    def scheduler_ticks(self) -> None:
        memory, sql = self.both(lambda side: side.engine.scheduler.tick())
        assert memory.value == sql.value

    @rule()
    def worker_runs(self) -> None:
        memory, sql = self.both(lambda side: side.engine.worker.run_once())
        assert memory.value == sql.value

    @rule()
    def watchdog_ticks(self) -> None:
        self.both(lambda side: side.engine.watchdog.tick())

    @rule(queues=claiming_queues)
    def worker_crashes(self, queues: tuple[str, ...]) -> None:
        """A worker claims every ready job of its queues and is never heard of again; its
        jobs stay processing until the watchdog rescues them after the lease."""
        memory, sql = self.both(
            lambda side: side.engine.store.acquire(
                queues,
                now=side.engine.clock.now(),
                lease=LEASE,
                limit=CLAIM_ALL,
                server_id="crashed",
            )
        )
        claimed = [{side.index[c.job.id] for c in o.value} for side, o in self.sides(memory, sql)]
        assert claimed[0] == claimed[1], "claimed jobs differ"

    @rule(queues=claiming_queues)
    def worker_crashes_and_is_rescued(self, queues: tuple[str, ...]) -> None:
        self.worker_crashes(queues)
        self.advance_clock(int(LEASE.total_seconds()) + 1)
        self.watchdog_ticks()

    def sides(self, memory: Outcome, sql: Outcome) -> list[tuple[Side, Outcome]]:
        return [(self.memory, memory), (self.sql, sql)]

    # --- the checks ----------------------------------------------------------------------------
    @invariant()
    def stores_agree(self) -> None:
        """Both stores show every job alike, and each history is legal and in order.

        Reading every job of the SQL store with `get` after every step would take most of the
        test's time, so its views are cached: a job is read again (and its history checked
        again) when its row in the SQL store's `list_jobs` (state, state time, attempt, run
        time...) or its view in the memory store (read in full, as that costs nothing)
        changed. Every step moves the clock, so every transition changes the job's state
        time: only a history entry that the SQL store recorded without changing the job's row
        would go unseen.
        """
        Figures.checks += 1
        if not self.changed:
            return  # no store was called since the last check
        self.changed = False
        started = time.perf_counter()
        memory, listed = self.run(self.read())
        assert listed == [_listed(job) for job in memory], "list_jobs differs from get"
        stale = [
            index
            for index in range(self.count)
            if index >= len(self.listed)
            or listed[index] != self.listed[index]
            or memory[index] != self.memory_seen[index]
        ]
        fresh = dict(zip(stale, self.run(self.views(self.sql, stale)), strict=True))
        self.sql_seen = [fresh[i] if i in fresh else self.sql_seen[i] for i in range(self.count)]
        self.memory_seen, self.listed = memory, listed
        for index in stale:
            assert memory[index] == self.sql_seen[index], f"job {index}"
            for side, seen in ((self.memory, memory), (self.sql, self.sql_seen)):
                illegal = illegal_transitions(seen[index].history)
                assert not illegal, f"{side.name}: job {index}: {illegal}"
        for side, seen in ((self.memory, memory), (self.sql, self.sql_seen)):
            early = early_starts(seen, self.parents, self.batches)
            assert not early, f"{side.name}: {early}"
        Figures.check_seconds += time.perf_counter() - started

    async def read(self) -> tuple[list[Seen], list[Listed]]:
        """Every job of the memory store, and every job of the SQL store's list."""
        memory = await self.views(self.memory, range(self.count))
        found = await self.sql.engine.store.list_jobs(
            JobFilter(), sort=JobSort.OLDEST, limit=CLAIM_ALL
        )
        unknown = [summary.id for summary in found if summary.id not in self.sql.index]
        assert not unknown, f"the SQL store has jobs no call returned: {unknown}"
        by_index = {self.sql.index[summary.id]: summary for summary in found}
        assert sorted(by_index) == list(range(self.count)), "list_jobs misses jobs"
        in_memory = await self.memory.engine.store.count_jobs(JobFilter())
        assert in_memory == self.count, "the memory store has jobs no call returned"
        return memory, [_listed(by_index[index]) for index in range(self.count)]

    async def views(self, side: Side, indexes: Sequence[int] | range) -> list[Seen]:
        return [_seen(await side.engine.jobs.get(side.jobs[i]), side) for i in indexes]


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """The machine loop's default executor: runs the SQL store's blocking work at once, on
    the loop's thread. The model runs one operation at a time, so threads would add nothing
    but a thread hop per transaction, which costs more than the transaction on a loaded
    2-core machine."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


class Figures:
    """What the run did, for the terminal summary."""

    examples = 0
    checks = 0
    """One after each example's start and one after each step."""
    check_seconds = 0.0


def _with(
    jobs: JobService,
    opts: Options,
    *,
    key: str | None = None,
    continue_on: ContinueOn | None = None,
) -> JobService:
    return jobs.options(
        queue=opts.queue, retry=opts.retry(), unique_key=key, continue_on=continue_on
    )


async def _outcome(running: Awaitable[Any]) -> Outcome:
    try:
        return Outcome(value=await running)
    except JobsError as error:
        return Outcome(error=type(error))


def _seen(view: JobView, side: Side) -> Seen:
    return Seen(
        state=view.state,
        attempt=view.attempt,
        max_attempts=view.max_attempts,
        queue=view.queue,
        created_at=view.created_at,
        run_at=view.run_at,
        unique_key=view.unique_key,
        parent=None if view.parent_id is None else side.index[view.parent_id],
        batch=None if view.batch_id is None else side.batches[view.batch_id],
        result=view.result,
        error=None if view.error is None else (view.error.type, view.error.message),
        progress=view.progress,
        history=tuple(Step(t.state, t.reason, t.at, t.data) for t in view.history),
    )


def _listed(job: JobSummary | Seen) -> Listed:
    """A row of `list_jobs`, or what it should show for a job as `get` shows it."""
    if isinstance(job, Seen):
        state_at, error_type = job.history[-1].at, job.error[0] if job.error else None
    else:
        state_at, error_type = job.state_at, job.error_type
    return Listed(
        state=job.state,
        state_at=state_at,
        created_at=job.created_at,
        run_at=job.run_at,
        attempt=job.attempt,
        queue=job.queue,
        progress=job.progress,
        error_type=error_type,
    )


@pytest.fixture
def quiet_engine() -> Iterator[None]:
    """The engine logs every failed job; the test checks outcomes, and logging them all would
    cost a good share of its time."""
    engine_logger = logging.getLogger("infrastructure.jobs")
    level = engine_logger.level
    engine_logger.setLevel(logging.CRITICAL)
    yield
    engine_logger.setLevel(level)


@pytest.fixture
def sql_store(sqlite_engine: sa.Engine) -> Iterator[SQLAlchemyJobStore]:
    store = SQLAlchemyJobStore(sqlite_engine)
    yield store
    asyncio.run(store.close())


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("quiet_engine")
def test_memory_and_sql_stores_agree(
    sql_store: SQLAlchemyJobStore, summary_lines: list[str]
) -> None:
    StoresAgree.sql_store = sql_store
    Figures.examples = Figures.checks = 0
    Figures.check_seconds = 0.0
    started = time.monotonic()
    try:
        run_state_machine_as_test(
            StoresAgree,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=IN_CI,
                database=None if IN_CI else settings().database,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        summary_lines.append(
            f"store model: {Figures.examples} examples, {Figures.checks - Figures.examples} "
            f"steps (at most {STEPS} each), in {time.monotonic() - started:.0f} s "
            f"({Figures.check_seconds:.0f} s in the checks)"
        )
