"""The unit of work over each persistence adapter and its job backend: the business rows and
the jobs of a use case commit together, and a use case that fails half-way leaves neither
(with the SQL backend). The memory job backend cannot join a transaction: its jobs stay."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import uuid4

import pytest
import sqlalchemy as sa

from application.jobs import HandlerNotRegistered, JobAdmin, JobService, JobState
from application.unit_of_work import UnitOfWork
from application.use_cases import RegisterUser, RequestReport
from domain.reports import ReportJobs
from domain.users import EmailJobs, User
from infrastructure.jobs.backend import BackendContext, DatabaseConfig, EngineBackend
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.execution import construct
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.memory.backend import MemoryBackend
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.persistence.memory_tables import InMemoryUnitOfWork
from infrastructure.persistence.sql.reports import reports
from infrastructure.persistence.sql.session import SqlDatabase, SqlUnitOfWork
from tests.contract.business import Repositories, in_memory, in_sql, sql_engine
from tests.databases import empty_tables

START = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


@dataclass
class Business:
    repos: Repositories
    uow: UnitOfWork
    jobs: JobService
    admin: JobAdmin
    clock: FakeClock
    engine: sa.Engine | None
    """The SQL database; None in memory."""

    @property
    def joins_transactions(self) -> bool:
        return self.engine is not None

    async def job_count(self) -> int:
        return sum((await self.admin.count_by_state()).values())

    def report_rows(self) -> int:
        assert self.engine is not None
        with self.engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(reports)) or 0


def registry_without_the_report_email() -> HandlerRegistry:
    """The report's second job cannot be created: RequestReport fails after its first job."""
    registry = HandlerRegistry()
    registry.register(EmailJobs.send_welcome)
    registry.register(ReportJobs.generate)
    return registry


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
async def business(request: pytest.FixtureRequest) -> AsyncIterator[Business]:
    clock = FakeClock(START)
    context = BackendContext(
        registry=registry_without_the_report_email(),
        handler_factory=construct,
        clock=clock,
        database=DatabaseConfig(url="sqlite://"),  # the SQL entries bring their own store
    )
    uow: UnitOfWork
    if request.param == "memory":
        backend: EngineBackend = MemoryBackend(context)
        engine: sa.Engine | None = None
        repos, uow = in_memory(), InMemoryUnitOfWork(backend.jobs)
    else:
        engine = sql_engine(request, request.param)
        store = SQLAlchemyJobStore(engine)
        empty_tables(engine, store.metadata)
        backend = EngineBackend(store, context)
        database = SqlDatabase(engine)
        repos, uow = in_sql(database), SqlUnitOfWork(database, backend.jobs)
    try:
        yield Business(repos, uow, backend.jobs, backend.admin, clock, engine)
    finally:
        await backend.close()


async def test_a_use_case_commits_its_rows_and_its_jobs_together(business: Business) -> None:
    register = RegisterUser(business.uow, business.repos.users, business.clock)

    registration = await register("ada@example.org", "Ada")

    assert await business.repos.users.get(registration.user_id) is not None
    view = await business.jobs.get(registration.welcome_job_id)
    assert view.state is JobState.ENQUEUED


async def test_a_transaction_that_raises_leaves_neither_rows_nor_jobs(
    business: Business,
) -> None:
    user = User(id=uuid4(), email="ada@example.org", name="Ada", registered_at=START)

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with business.uow.begin() as tx:
            await business.repos.users.add(user)
            assert await business.repos.users.get(user.id) == user  # seen inside
            await tx.jobs.enqueue(EmailJobs.send_welcome, user.id)
            raise RuntimeError("changed my mind")

    assert await business.repos.users.get(user.id) is None
    if business.joins_transactions:
        assert await business.job_count() == 0
    else:  # the memory backend creates jobs at once: the job stays, its handler finds no user
        assert await business.job_count() == 1


async def test_a_use_case_failing_half_way_leaves_neither_rows_nor_jobs(
    business: Business,
) -> None:
    request_report = RequestReport(business.uow, business.repos.reports, business.clock)

    # The report row and its generation job are written, then the email job is refused.
    with pytest.raises(HandlerNotRegistered):
        await request_report("ops@example.org", START - WEEK, START)

    if business.joins_transactions:
        assert await business.job_count() == 0
        assert business.report_rows() == 0
    else:
        assert await business.job_count() == 1


async def test_transactions_do_not_nest(business: Business) -> None:
    async with business.uow.begin():
        with pytest.raises(RuntimeError, match="already open"):
            async with business.uow.begin():
                pass
