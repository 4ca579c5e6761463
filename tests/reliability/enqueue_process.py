"""A process that enqueues one unique key many times at once, for the unique-key race (R9).

Environment:

    RELIABILITY_DB_URL      SQLAlchemy URL of the job database
    RELIABILITY_UNIQUE_KEY  the unique key
    RELIABILITY_COUNT       how many concurrent enqueues (asyncio.gather)
    RELIABILITY_BARRIER     a folder: the process writes `ready-<name>` there once set up, waits
                            for `go` to appear, then races, and writes `result-<name>.json`
                            ({"ids": [...], "errors": [...]})
    RELIABILITY_NAME        this process's name
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.reliability.handlers import WitnessJobs, build_registry

BARRIER_TIMEOUT = 60.0


async def race() -> int:
    env = os.environ
    barrier, name = Path(env["RELIABILITY_BARRIER"]), env["RELIABILITY_NAME"]
    engine = create_engine(env["RELIABILITY_DB_URL"])
    store = SQLAlchemyJobStore(engine)
    jobs = EngineJobService(store, build_registry(), SystemClock()).options(
        unique_key=env["RELIABILITY_UNIQUE_KEY"]
    )
    with engine.connect():
        pass  # connected before the start
    (barrier / f"ready-{name}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            return 3
        await asyncio.sleep(0.005)
    outcomes = await asyncio.gather(
        *(jobs.enqueue(WitnessJobs.sleep, 10) for _ in range(int(env["RELIABILITY_COUNT"]))),
        return_exceptions=True,
    )
    result = {
        "ids": [str(o) for o in outcomes if not isinstance(o, BaseException)],
        "errors": [repr(o) for o in outcomes if isinstance(o, BaseException)],
    }
    (barrier / f"result-{name}.json").write_text(json.dumps(result))
    await store.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(race()))
