"""Business rows and their scheduled jobs survive a restart of the service: `jobs-service
serve` on SQLite, stopped (SIGTERM) and started again. The review request scheduled before the
restart still runs after it, and finds its order."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from infrastructure.persistence.orders import orders as orders_table
from tests.reliability.processes import Child, Processes, free_port

READY_WITHIN = 60.0
STOP_WITHIN = 30.0


@pytest.mark.timeout(240)
def test_an_order_and_its_scheduled_review_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "service.db"
    port = free_port()
    env = {
        "APP_DB__URL": f"sqlite:///{database}",
        "APP_HTTP__PORT": str(port),
        "APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST": "true",
        "APP_JOBS__SAMPLE_EVERY_MINUTE": "false",
        "APP_TEMP_DIRECTORY": str(tmp_path / "tmp"),
    }
    base = f"http://127.0.0.1:{port}"
    with Processes(tmp_path / "logs") as processes:
        first = start(processes, env, base)
        placed = httpx.post(
            f"{base}/v1/orders", json={"customer_email": "ada@example.org", "total": "9.90"}
        )
        assert placed.status_code == 201, placed.text
        order_id = UUID(placed.json()["order_id"])
        review_job = placed.json()["review_job_id"]
        assert wait_for(lambda: order_row(database, order_id)["confirmed_at"] is not None), (
            first.output()
        )
        stop(first)

        second = start(processes, env, base)
        # The review job is still scheduled (30 minutes away): run it now, after the restart.
        assert job_state(base, review_job) == "scheduled"
        assert httpx.post(f"{base}/api/jobs/{review_job}/requeue").status_code < 300
        assert wait_for(lambda: job_state(base, review_job) == "succeeded"), second.output()
        assert order_row(database, order_id)["review_requested_at"] is not None
        stop(second)


def start(processes: Processes, env: dict[str, str], base: str) -> Child:
    child = processes.spawn("serve", ["-m", "host", "serve"], env)
    assert wait_for(lambda: ready(base)), child.output()
    return child


def stop(child: Child) -> None:
    child.terminate()
    # uvicorn shuts down gracefully, then ends by the signal it received (-SIGTERM).
    assert child.wait(STOP_WITHIN) in (0, -signal.SIGTERM), child.output()


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready").status_code == 200
    except httpx.TransportError:
        return False


def job_state(base: str, job_id: str) -> str:
    response = httpx.get(f"{base}/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def order_row(database: Path, order_id: UUID) -> dict[str, object]:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            query = sa.select(orders_table).where(orders_table.c.id == order_id)
            return dict(connection.execute(query).one()._mapping)
    finally:
        engine.dispose()


def wait_for(condition: object, within: float = READY_WITHIN) -> bool:
    """Poll `condition` until true or `within` seconds passed (bounded, never a timing goal)."""
    assert callable(condition)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
