"""Job backends are plug-ins: the host picks one by name and never asks which it has."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from application.jobs import JobState
from domain.maintenance import HeartbeatJobs
from host.container import create_container
from host.runtime import JobRuntime
from host.settings import JobsSettings, Settings
from infrastructure.jobs.backend import Role, register_backend
from tests.plugins.toy_backend import ToyBackend

HOST = Path(__file__).resolve().parents[2] / "src" / "host"
BRANCH_ON_A_NAME = re.compile(
    r"""backend\s*(==|!=|\bin\b)|(==|!=)\s*["'](sql|memory|dramatiq)["']|["'](sql|memory|dramatiq)["']\s*(==|!=)"""
)


def test_no_host_module_branches_on_a_backend_name() -> None:
    branches = [
        f"{path.relative_to(HOST)}:{number}: {line.strip()}"
        for path in sorted(HOST.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BRANCH_ON_A_NAME.search(line)
    ]
    assert branches == []


@pytest.mark.parametrize("name", ["toy-registered", "tests.plugins.toy_backend:ToyBackend"])
async def test_a_backend_from_a_test_package_runs_jobs_in_the_service(
    tmp_path: Path, name: str
) -> None:
    register_backend("toy-registered", ToyBackend)
    settings = Settings(jobs=JobsSettings(backend=name, poll_seconds=0.05), temp_directory=tmp_path)
    container = create_container(settings)
    runtime = JobRuntime(container, frozenset({Role.WORKER, Role.SCHEDULER}))
    runtime.start()
    try:
        job_id = await container.jobs().enqueue(HeartbeatJobs.beat)
        async with asyncio.timeout(10):
            while True:
                if (await container.jobs().get(job_id)).state is JobState.SUCCEEDED:
                    break
                await asyncio.sleep(0.02)
    finally:
        await runtime.stop()
    backend = container.backend()
    assert isinstance(backend, ToyBackend)
    assert backend.counting.transactions > 0


def test_an_unknown_backend_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="choose one of memory, sql"):
        JobsSettings(backend="rabbit-hole")


@pytest.mark.parametrize("backend", ["memory", "sql"])
async def test_a_synchronous_caller_in_a_thread_enqueues_and_waits_while_the_service_runs(
    tmp_path: Path, backend: str
) -> None:
    # Given a running service, and a view of a sync framework (Flask, Django) in a thread
    settings = Settings(
        jobs=JobsSettings(backend=backend, poll_seconds=0.05),
        db={"url": f"sqlite:///{tmp_path / 'jobs.db'}"},
        temp_directory=tmp_path,
    )
    container = create_container(settings)
    runtime = JobRuntime(container, frozenset({Role.WORKER, Role.SCHEDULER}))
    runtime.start()

    def view() -> JobState:
        jobs = container.sync_jobs()
        job_id = jobs.enqueue(HeartbeatJobs.beat)
        return jobs.wait(job_id, timeout=10).state

    try:
        async with asyncio.timeout(10):
            while True:
                if await runtime.ready() is None:  # storage migrated, loops running
                    break
                await asyncio.sleep(0.02)
        state = await asyncio.to_thread(view)
    finally:
        await runtime.stop()
        container.sync_jobs().close()
    assert state is JobState.SUCCEEDED
