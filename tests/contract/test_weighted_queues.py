"""Weighted queues: a server may take its queues in proportion to weights instead of in strict
priority order, so a busy queue never starves the others."""

from __future__ import annotations

from tests.contract.conftest import Engine
from tests.contract.handlers import Journal, Recorder

CLAIMS = 8


async def fill(engine: Engine, per_queue: int) -> None:
    for n in range(per_queue):
        await engine.jobs.options(queue="critical").enqueue(Recorder.record, n)
        await engine.jobs.options(queue="low").enqueue(Recorder.record, 1000 + n)


def taken_from_low() -> int:
    return sum(1 for value in Journal.values("record") if isinstance(value, int) and value >= 1000)


async def test_weighted_claims_take_each_queue_in_proportion_and_never_starve_low(
    engine: Engine,
) -> None:
    # Given both queues always full, and a one-slot worker weighting critical 3 to low's 1
    await fill(engine, CLAIMS)
    worker = engine.new_worker(
        queues=("critical", "low"), concurrency=1, queue_weights={"critical": 3, "low": 1}
    )

    # When it claims 8 times
    for _ in range(CLAIMS):
        assert await worker.run_once() == 1

    # Then low was taken 2 times in 8, critical 6
    assert taken_from_low() == 2
    assert len(Journal.values("record")) == CLAIMS


async def test_strict_priority_stays_the_default_and_takes_critical_first(engine: Engine) -> None:
    await fill(engine, CLAIMS)
    worker = engine.new_worker(concurrency=1)

    for _ in range(CLAIMS):
        await worker.run_once()

    assert taken_from_low() == 0


async def test_a_weighted_worker_takes_the_other_queues_when_one_is_empty(engine: Engine) -> None:
    for n in range(3):
        await engine.jobs.options(queue="low").enqueue(Recorder.record, 1000 + n)
    worker = engine.new_worker(concurrency=1, queue_weights={"critical": 3, "low": 1})

    for _ in range(3):
        assert await worker.run_once() == 1

    assert taken_from_low() == 3
