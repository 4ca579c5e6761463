"""The handlers behind the recurring jobs, fired by the scheduler on their cron schedules."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from application.jobs import Cron, JobState
from domain.invoices import InvoiceJobs, Subscription, monthly_invoice_id
from domain.maintenance import HeartbeatJobs, TempFileJobs
from domain.reports import ReportJobs, daily_report_id
from tests.unit.application.conftest import Service


def touch(path: Path, modified: dt.datetime) -> Path:
    path.write_text("x")
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


async def last_job_state(service: Service, recurring_id: str) -> JobState | None:
    recurring = await service.jobs.get_recurring(recurring_id)
    if recurring.last_job_id is None:
        return None
    return await service.state(recurring.last_job_id)


async def test_monthly_invoices_are_issued_on_the_first_at_six(service: Service) -> None:
    subscription = Subscription(
        id=uuid4(), customer_email="acme@example.com", monthly_fee=Decimal("49.00")
    )
    await service.adapters.subscriptions.add(subscription)
    await service.jobs.add_or_update_recurring(
        "monthly-invoices", Cron("0 6 1 * *", "UTC"), InvoiceJobs.generate_monthly
    )
    april = dt.date(2026, 4, 1)
    invoice_id = monthly_invoice_id(subscription.id, april)

    service.clock.set(dt.datetime(2026, 4, 1, 5, 59, tzinfo=dt.UTC))
    await service.drain()
    assert await service.adapters.invoices.get(invoice_id) is None

    service.clock.set(dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.UTC))
    await service.drain()
    invoice = await service.adapters.invoices.get(invoice_id)
    assert invoice is not None and invoice.amount == Decimal("49.00")
    assert await last_job_state(service, "monthly-invoices") is JobState.SUCCEEDED


async def test_daily_report_is_generated_at_two(service: Service) -> None:
    await service.jobs.add_or_update_recurring(
        "daily-report", "0 2 * * *", ReportJobs.generate_daily
    )

    service.clock.set(dt.datetime(2026, 3, 11, 2, 0, tzinfo=dt.UTC))
    await service.drain()

    report = await service.adapters.reports.get(daily_report_id(dt.date(2026, 3, 10)))
    assert report is not None and report.content is not None


async def test_heartbeat_logs_a_line_stored_with_its_job(service: Service) -> None:
    await service.jobs.add_or_update_recurring("heartbeat", "* * * * *", HeartbeatJobs.beat)

    await service.advance_and_drain(dt.timedelta(minutes=1))

    recurring = await service.jobs.get_recurring("heartbeat")
    assert recurring.last_job_id is not None
    job = await service.job(recurring.last_job_id)
    assert job.state is JobState.SUCCEEDED
    assert [line.message for line in job.logs] == [
        f"heartbeat at {service.clock.now().isoformat()} (attempt 1)"
    ]


async def test_temp_file_cleanup_runs_in_a_worker_thread(service: Service) -> None:
    directory = service.adapters.temp_directory
    stale = touch(directory / "stale.tmp", service.clock.now() - dt.timedelta(days=2))
    fresh = touch(directory / "fresh.tmp", service.clock.now() - dt.timedelta(hours=1))
    await service.jobs.add_or_update_recurring(
        "temp-cleanup", "30 3 * * *", TempFileJobs.cleanup, older_than_hours=24
    )

    job_id = await service.jobs.trigger_recurring("temp-cleanup")
    await service.drain()

    job = await service.job(job_id)
    assert (job.state, job.result, job.progress) == (JobState.SUCCEEDED, 1, 100)
    assert not stale.exists()
    assert fresh.exists()
