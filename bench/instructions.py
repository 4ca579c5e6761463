"""Instructions per job on the hot paths, counted by valgrind's callgrind: a figure that does
not move with the machine's load, unlike jobs/s (useful on a shared machine, where a
throughput run varies by 10-15 % between runs). It complements `run.sh`, it does not replace
it: instructions ignore waits on the database (fsync, locks, round trips).

    .venv/bin/python bench/instructions.py [--baseline REV] [--n 1000]

For each scenario, on SQLite with the shipped middleware (logs, traces, metrics):
* enqueue: `jobs.enqueue(...)` one job per call, one transaction each;
* process: a worker (concurrency 128) claims and runs jobs pre-filled in one batch.
Each is counted twice, with a few jobs and with `--n` more, and the difference divided by
`--n`, so start-up and imports cancel out. With `--baseline REV`, REV's `src/` (extracted with
`git archive`) is counted the same way and the ratio printed. Needs valgrind (Debian's
package); a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("enqueue", "process")
WARM = 200


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def count(src: Path, scenario: str, n: int) -> int:
    """Instructions of one run of `scenario` with `n` jobs, the engine imported from `src`."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--run", scenario, "--src", str(src), "--n", str(n),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONMALLOC": "malloc"}  # the allocator valgrind can follow
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return int(re.findall(r"Collected : (\d+)", done.stderr)[-1])


def per_job(src: Path, scenario: str, n: int) -> float:
    return (count(src, scenario, WARM + n) - count(src, scenario, WARM)) / n


def extract(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(into, filter="data")
    return into / "src"


def compare(baseline: str | None, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"tree": ROOT / "src"}
        if baseline:
            trees[baseline] = extract(baseline, Path(tmp))
        say(f"instructions per job (callgrind), n = {n}")
        for scenario in SCENARIOS:
            figures = {name: per_job(src, scenario, n) for name, src in trees.items()}
            line = ", ".join(f"{name} {value / 1e6:.3f} M" for name, value in figures.items())
            if baseline:
                line += f"; tree / {baseline} = {figures['tree'] / figures[baseline]:.3f}"
            say(f"  {scenario}: {line}")


# --------------------------------------------------------------------------- one run


class Jobs:
    """The job run: a no-op that sets `finished` once `expected` jobs ran."""

    expected = 0
    ran = 0
    finished: asyncio.Event | None = None

    @classmethod
    def until(cls, expected: int, finished: asyncio.Event) -> None:
        cls.expected, cls.finished = expected, finished

    async def noop(self) -> None:
        Jobs.ran += 1
        if Jobs.ran >= Jobs.expected and Jobs.finished is not None:
            Jobs.finished.set()


def run(scenario: str, n: int) -> None:
    """Runs in the child, under valgrind, with the engine of `--src` first on the path."""
    import sqlalchemy as sa  # noqa: F401 (imported before the clock starts, as in the service)

    from infrastructure.jobs.clock import SystemClock
    from infrastructure.jobs.engine.client import EngineJobService
    from infrastructure.jobs.engine.execution import Executor
    from infrastructure.jobs.engine.middleware import Middlewares
    from infrastructure.jobs.engine.worker import Worker, WorkerSettings
    from infrastructure.jobs.handlers import HandlerRegistry
    from infrastructure.jobs.sql import migrate
    from infrastructure.jobs.sql.database import create_engine
    from infrastructure.jobs.sql.store import SQLAlchemyJobStore
    from infrastructure.jobs.telemetry import default_middleware

    finished = asyncio.Event()
    Jobs.until(n, finished)
    registry = HandlerRegistry()
    registry.register(Jobs.noop, queue="default")
    folder = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    engine = create_engine(f"sqlite:///{folder / 'jobs.db'}")
    migrate.upgrade(engine)
    store = SQLAlchemyJobStore(engine)
    middleware = Middlewares(default_middleware())
    jobs = EngineJobService(store, registry, SystemClock(), middleware=middleware)

    async def main() -> None:
        if scenario == "enqueue":
            for _ in range(n):
                await jobs.enqueue(Jobs.noop)
        else:
            async with jobs.batch() as batch:
                for _ in range(n):
                    await batch.enqueue(Jobs.noop)
            settings = WorkerSettings(queues=("default",), concurrency=128, poll_interval=0.5)
            worker = Worker(
                store, Executor(registry), SystemClock(), server_id="bench",
                settings=settings, middleware=middleware,
            )  # fmt: skip
            stopping = asyncio.Event()
            running = asyncio.create_task(worker.run(stopping))
            await finished.wait()
            stopping.set()
            await running
        await store.close()

    try:
        asyncio.run(main())
    finally:
        engine.dispose()
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git revision to count beside the working tree")
    parser.add_argument("--n", type=int, default=1000, help="jobs counted per scenario")
    parser.add_argument("--run", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.n <= 0:
        parser.error("--n takes a positive integer")
    if args.run:
        sys.path.insert(0, args.src)
        run(args.run, args.n)
    elif shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    else:
        compare(args.baseline, args.n)


if __name__ == "__main__":
    main()
