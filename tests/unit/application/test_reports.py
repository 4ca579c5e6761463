from __future__ import annotations

import datetime as dt

from application.jobs import JobState
from application.use_cases import RequestReport
from tests.unit.application.conftest import Service


async def test_report_is_generated_then_emailed(service: Service) -> None:
    # Given a report request for the last week
    now = service.clock.now()
    requested = await RequestReport(service.uow, service.adapters.reports, service.clock)(
        "boss@example.com", now - dt.timedelta(days=7), now
    )
    assert await service.state(requested.email_job_id) is JobState.AWAITING

    # When a worker takes what is ready, it runs the generation alone
    assert await service.worker.run_once() == 1
    report = await service.adapters.reports.get(requested.report_id)
    assert report is not None and report.content is not None
    assert report.emailed_at is None
    assert service.adapters.email.sent == []

    # Then the email continuation runs next, with the generated content, at its first try
    assert await service.worker.run_once() == 1
    [message] = service.adapters.email.sent
    assert (message.to, message.body) == ("boss@example.com", report.content)
    email_job = await service.job(requested.email_job_id)
    assert (email_job.state, email_job.attempt) == (JobState.SUCCEEDED, 1)
    assert email_job.parent_id == requested.generate_job_id


async def test_deleting_the_generation_cancels_the_email(service: Service) -> None:
    now = service.clock.now()
    requested = await RequestReport(service.uow, service.adapters.reports, service.clock)(
        "boss@example.com", now - dt.timedelta(days=1), now
    )

    await service.jobs.delete(requested.generate_job_id)
    await service.drain()

    assert await service.state(requested.email_job_id) is JobState.DELETED
    assert service.adapters.email.sent == []
