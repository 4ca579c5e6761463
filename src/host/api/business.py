"""The service's business API under /v1: each route parses, calls one use case, and shapes
its result. Domain errors become problem details in `host.api.problems`, never here."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field

from application.use_cases import (
    ForgotPassword,
    RegisterUser,
    RequestReport,
    ScheduleInvoiceReminder,
    SendBulkNotification,
)
from host.api.deps import WRITE, container_of
from host.api.inputs import EmailAddress, Instant, Name, Text
from host.api.problems import problem_responses

PREFIX = "/v1"
"""Where the business routes live, apart from the jobs API (/api)."""

router = APIRouter(prefix=PREFIX, tags=["business"])


def _use_case(name: str) -> object:
    def provide(request: Request) -> object:
        return getattr(container_of(request).use_cases, name)()

    return Depends(provide)


Register = Annotated[RegisterUser, _use_case("register_user")]
Forgot = Annotated[ForgotPassword, _use_case("forgot_password")]
Report = Annotated[RequestReport, _use_case("request_report")]
Notify = Annotated[SendBulkNotification, _use_case("send_bulk_notification")]
Remind = Annotated[ScheduleInvoiceReminder, _use_case("schedule_invoice_reminder")]


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class RegistrationIn(BaseModel):
    model_config = _examples({"email": "ada@example.org", "name": "Ada Lovelace"})
    email: EmailAddress
    name: Name


class RegistrationOut(BaseModel):
    user_id: UUID
    welcome_job_id: UUID


class PasswordResetIn(BaseModel):
    model_config = _examples({"email": "ada@example.org"})
    email: EmailAddress


class ReportIn(BaseModel):
    model_config = _examples(
        {
            "recipient": "ops@example.org",
            "period_start": "2026-03-01T00:00:00Z",
            "period_end": "2026-04-01T00:00:00Z",
        }
    )
    recipient: EmailAddress
    period_start: Instant
    period_end: Instant


class ReportOut(BaseModel):
    report_id: UUID
    generate_job_id: UUID
    email_job_id: UUID


class BulkNotificationIn(BaseModel):
    model_config = _examples(
        {
            "user_ids": ["0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"],
            "message": "We will be down for maintenance tonight.",
            "requested_by": "ops@example.org",
        }
    )
    user_ids: list[UUID] = Field(min_length=1, max_length=100)
    message: Text
    requested_by: EmailAddress


class BulkNotificationOut(BaseModel):
    bulk_id: UUID
    batch_id: UUID
    summary_job_id: UUID


class ReminderOut(BaseModel):
    job_id: UUID


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(400, 409, 413, 422),
)
async def register_user(body: RegistrationIn, register: Register) -> RegistrationOut:
    """Register a user; the welcome email is sent in the background."""
    registration = await register(body.email, body.name)
    return RegistrationOut(user_id=registration.user_id, welcome_job_id=registration.welcome_job_id)


@router.post(
    "/password-resets",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WRITE],
    responses=problem_responses(400, 413, 422),
)
async def forgot_password(body: PasswordResetIn, forgot: Forgot) -> None:
    """Email a password reset code if the address is registered (the answer is the same
    either way, so as not to reveal who is registered)."""
    await forgot(body.email)


@router.post(
    "/reports",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(400, 413, 422),
)
async def request_report(body: ReportIn, report: Report) -> ReportOut:
    """Generate an activity report of a period in the background, then email it."""
    requested = await report(body.recipient, body.period_start, body.period_end)
    return ReportOut(
        report_id=requested.report_id,
        generate_job_id=requested.generate_job_id,
        email_job_id=requested.email_job_id,
    )


@router.post(
    "/notifications/bulk",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(400, 413, 422),
)
async def send_bulk_notification(body: BulkNotificationIn, notify: Notify) -> BulkNotificationOut:
    """Notify each user in a job of its own; the sender gets a summary when all finished."""
    sent = await notify(body.user_ids, body.message, body.requested_by)
    return BulkNotificationOut(
        bulk_id=sent.bulk_id, batch_id=sent.batch_id, summary_job_id=sent.summary_job_id
    )


@router.post(
    "/invoices/{invoice_id}/reminder",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def schedule_invoice_reminder(invoice_id: UUID, remind: Remind) -> ReminderOut:
    """Plan the invoice's reminder 24 hours before it falls due (once per invoice)."""
    return ReminderOut(job_id=await remind(invoice_id))
