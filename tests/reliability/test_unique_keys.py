"""R9: unique keys hold under contention from several processes.

Three processes each enqueue one unique key 50 times at once (asyncio.gather): every call
returns the same id and exactly one job is active; once it has completed, a new enqueue creates
a new job. Variant: the first inserter's transaction is still open while the others race and
then rolls back: the key is not lost (Oban#1093), the others agree on one new job.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.reliability.common import (
    JOBS,
    in_thread,
    job_service,
    job_states,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs
from tests.reliability.processes import Child, Processes

RACERS = 3
PER_RACER = 50
BLOCKED_FOR = 1.5
"""Seconds the racers stay blocked behind the open transaction before it rolls back."""


@dataclass(frozen=True, slots=True)
class Race:
    ids: list[str]
    errors: list[str]
    codes: list[int | None]
    logs: str


@pytest.mark.timeout(120)
async def test_one_unique_key_from_three_processes_makes_one_job(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine, key = database.engine, "welcome:42"
    with Processes(tmp_path / "logs") as processes:
        racers = _start_race(processes, database, key, tmp_path / "race")
        await _go(tmp_path / "race", racers)
        race = await _results(processes, racers, tmp_path / "race")
        figures.add("enqueues", len(race.ids) + len(race.errors))
        figures.add("errors", len(race.errors))
        figures.add("distinct_ids", len(set(race.ids)))
        figures.add("active_jobs", _active(engine, key))
        assert race.errors == [], race.errors
        assert race.codes == [0] * RACERS, race.logs
        assert len(race.ids) == RACERS * PER_RACER and len(set(race.ids)) == 1, set(race.ids)
        assert _keyed(engine, key) == [(race.ids[0], "enqueued", key)]

        worker = processes.spawn_worker("worker", worker_env(database.url))
        done = await wait_until(
            in_thread(lambda: job_states(engine).get("succeeded") == 1), within=30
        )
        assert done, processes.outputs()
        assert processes.stop_all(timeout=15) == {f"worker[{worker.pid}]": 0}

    jobs, store = job_service(engine)
    again = str(await jobs.options(unique_key=key).enqueue(WitnessJobs.sleep, 10))
    await store.close()
    assert again != race.ids[0]
    assert sorted(_keyed(engine, key)) == sorted(
        [(race.ids[0], "succeeded", None), (again, "enqueued", key)]
    )


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mariadb"], indirect=True)
@pytest.mark.timeout(120)
async def test_unique_key_survives_the_first_inserter_rolling_back(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine, key = database.engine, "report:7"
    jobs, store = job_service(engine)
    with Processes(tmp_path / "logs") as processes:
        racers = _start_race(processes, database, key, tmp_path / "race")
        with Session(engine) as session:
            held = str(
                await jobs.options(unique_key=key, session=session).enqueue(WitnessJobs.sleep, 10)
            )
            await _go(tmp_path / "race", racers)
            await asyncio.sleep(BLOCKED_FOR)  # the racers wait behind this transaction
            session.rollback()
        race = await _results(processes, racers, tmp_path / "race")
    await store.close()
    figures.add("enqueues", len(race.ids) + len(race.errors))
    figures.add("errors", len(race.errors))
    figures.add("distinct_ids", len(set(race.ids)))
    figures.add("active_jobs", _active(engine, key))

    assert race.errors == [], race.errors
    assert race.codes == [0] * RACERS, race.logs
    assert len(set(race.ids)) == 1 and held not in race.ids, set(race.ids)
    assert _keyed(engine, key) == [(race.ids[0], "enqueued", key)]


def _start_race(processes: Processes, database: Database, key: str, barrier: Path) -> list[Child]:
    barrier.mkdir(parents=True)
    return [
        processes.spawn(
            f"racer{n}",
            ["-m", "tests.reliability.enqueue_process"],
            {
                "RELIABILITY_DB_URL": database.url,
                "RELIABILITY_UNIQUE_KEY": key,
                "RELIABILITY_COUNT": str(PER_RACER),
                "RELIABILITY_BARRIER": str(barrier),
                "RELIABILITY_NAME": f"racer{n}",
            },
        )
        for n in range(RACERS)
    ]


async def _go(barrier: Path, racers: list[Child]) -> None:
    """Start the racers together once all are connected."""

    async def all_ready() -> bool:
        return all((barrier / f"ready-racer{n}").exists() for n in range(len(racers)))

    ready = await wait_until(all_ready, within=30, interval=0.01)
    assert ready, "\n".join(child.output() for child in racers)
    (barrier / "go").touch()


async def _results(processes: Processes, racers: list[Child], barrier: Path) -> Race:
    codes = [await asyncio.to_thread(child.wait, 60) for child in racers]
    ids: list[str] = []
    errors: list[str] = []
    for n in range(len(racers)):
        path = barrier / f"result-racer{n}.json"
        if path.exists():
            result = json.loads(path.read_text())
            ids += result["ids"]
            errors += result["errors"]
        else:
            errors.append(f"racer{n} wrote no result")
    return Race(ids, errors, codes, processes.outputs())


def _keyed(engine: sa.Engine, key: str) -> list[tuple[str, str, str | None]]:
    """(id, state, active key) of the jobs with this unique key."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(JOBS.c.id, JOBS.c.state, JOBS.c.active_key).where(JOBS.c.unique_key == key)
        ).all()
    return [(str(job_id), state, active) for job_id, state, active in rows]


def _active(engine: sa.Engine, key: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(JOBS.c.active_key == key)
        return int(connection.scalar(query) or 0)
