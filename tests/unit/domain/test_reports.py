from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.invoices import Invoice
from domain.reports import (
    Report,
    ReportJobs,
    ReportKind,
    ReportNotFound,
    ReportNotGenerated,
    daily_report_id,
)
from domain.users import User
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import (
    InMemoryInvoiceRepository,
    InMemoryReportRepository,
    InMemoryUserRepository,
)

DAY = dt.timedelta(days=1)


@pytest.fixture
def jobs(reports, users, invoices, email, clock) -> ReportJobs:
    return ReportJobs(reports, users, invoices, email, clock)


@pytest.fixture
async def activity(
    users: InMemoryUserRepository, invoices: InMemoryInvoiceRepository, clock: FakeClock
) -> None:
    """Yesterday: two users registered, two invoices issued and one of them paid.
    Two days ago: one user and one unpaid invoice."""
    yesterday, earlier = clock.now() - DAY, clock.now() - 2 * DAY
    for name, at in (("ann", yesterday), ("bob", yesterday), ("cid", earlier)):
        await users.add(User(id=uuid4(), email=f"{name}@x.test", name=name, registered_at=at))
    issued = [("10.00", yesterday, True), ("5.50", yesterday, False), ("1.25", earlier, False)]
    for amount, at, paid in issued:
        invoice = Invoice(
            id=uuid4(),
            customer_email="c@x.test",
            amount=Decimal(amount),
            issued_at=at,
            due_at=at + 14 * DAY,
            paid=paid,
        )
        await invoices.add(invoice)


async def requested(reports: InMemoryReportRepository, clock: FakeClock) -> Report:
    report = Report(
        id=uuid4(),
        kind=ReportKind.ON_DEMAND,
        period_start=clock.now() - DAY - dt.timedelta(hours=1),
        period_end=clock.now(),
        requested_at=clock.now(),
        recipient="boss@x.test",
    )
    await reports.add(report)
    return report


def test_a_report_period_must_not_be_empty(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        Report(
            id=uuid4(),
            kind=ReportKind.ON_DEMAND,
            period_start=clock.now(),
            period_end=clock.now(),
            requested_at=clock.now(),
        )


@pytest.mark.usefixtures("activity")
async def test_generate_summarises_the_period(
    jobs: ReportJobs, reports: InMemoryReportRepository, clock: FakeClock
) -> None:
    report = await requested(reports, clock)

    await jobs.generate(report.id)

    stored = await reports.get(report.id)
    assert stored is not None and stored.generated_at == clock.now()
    assert stored.content is not None
    lines = stored.content.splitlines()[1:]
    assert lines == [
        "New users: 2",
        "Invoices issued: 2, totalling 15.50",
        "Invoices unpaid: 2, totalling 6.75",
    ]


async def test_email_before_generation_fails(
    jobs: ReportJobs, reports: InMemoryReportRepository, clock: FakeClock, email
) -> None:
    report = await requested(reports, clock)

    with pytest.raises(ReportNotGenerated):
        await jobs.email_report(report.id)
    assert email.sent == []


async def test_generated_report_is_emailed_once(
    jobs: ReportJobs,
    reports: InMemoryReportRepository,
    clock: FakeClock,
    email: LoggingEmailSender,
) -> None:
    report = await requested(reports, clock)
    await jobs.generate(report.id)

    assert await jobs.email_report(report.id) is True
    assert await jobs.email_report(report.id) is False

    [message] = email.sent
    stored = await reports.get(report.id)
    assert stored is not None
    assert (message.to, message.body) == ("boss@x.test", stored.content)
    assert stored.emailed_at == clock.now()


async def test_unknown_report_fails(jobs: ReportJobs) -> None:
    with pytest.raises(ReportNotFound):
        await jobs.generate(uuid4())


@pytest.mark.usefixtures("activity")
async def test_daily_report_covers_the_previous_utc_day_once(
    jobs: ReportJobs, reports: InMemoryReportRepository, clock: FakeClock
) -> None:
    report_id = await jobs.generate_daily()
    clock.advance(dt.timedelta(hours=1))
    again = await jobs.generate_daily()

    assert again == report_id == daily_report_id(dt.date(2026, 3, 9))
    report = await reports.get(report_id)
    assert report is not None and report.content is not None
    assert report.period_start == dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    assert report.period_end == dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    assert report.generated_at == clock.now() - dt.timedelta(hours=1)
    assert "New users: 2" in report.content
