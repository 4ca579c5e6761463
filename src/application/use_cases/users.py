"""Registering users and letting them reset a forgotten password."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from uuid import UUID, uuid4

from application.jobs import JobId
from application.unit_of_work import UnitOfWork
from domain.clock import Clock
from domain.users import (
    EmailAlreadyRegistered,
    EmailJobs,
    PasswordReset,
    PasswordResetRepository,
    User,
    UserRepository,
)

RESET_REMINDER_DELAY = dt.timedelta(hours=1)
"""When a password reset still unused gets a reminder."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    user_id: UUID
    welcome_job_id: JobId


class RegisterUser:
    """Create a user and welcome them by email in the background: the user and the welcome
    job are written in one transaction."""

    def __init__(self, uow: UnitOfWork, users: UserRepository, clock: Clock) -> None:
        self._uow = uow
        self._users = users
        self._clock = clock

    async def __call__(self, email: str, name: str) -> Registration:
        """Raises:
        EmailAlreadyRegistered: a user already has this email address.
        ValueError: the email address is malformed.
        """
        email = email.strip()
        user = User(id=uuid4(), email=email, name=name.strip(), registered_at=self._clock.now())
        async with self._uow.begin() as tx:
            if await self._users.get_by_email(email) is not None:
                raise EmailAlreadyRegistered(email)
            await self._users.add(user)
            welcome = tx.jobs.options(unique_key=f"welcome:{user.id}")
            job_id = await welcome.enqueue(EmailJobs.send_welcome, user.id)
        return Registration(user_id=user.id, welcome_job_id=job_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordResetRequested:
    reset_id: UUID
    email_job_id: JobId
    reminder_job_id: JobId


class ForgotPassword:
    """Email a password reset code now, and a reminder an hour later if it is still unused
    (the reset and both jobs in one transaction)."""

    def __init__(
        self,
        uow: UnitOfWork,
        users: UserRepository,
        resets: PasswordResetRepository,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._users = users
        self._resets = resets
        self._clock = clock

    async def __call__(self, email: str) -> PasswordResetRequested | None:
        """Returns None, doing nothing, for an unknown address (the caller should answer
        the same either way, so as not to reveal who is registered)."""
        user = await self._users.get_by_email(email.strip())
        if user is None:
            return None
        reset = PasswordReset.issue(
            reset_id=uuid4(),
            user_id=user.id,
            token=secrets.token_urlsafe(24),
            now=self._clock.now(),
        )
        async with self._uow.begin() as tx:
            await self._resets.add(reset)
            email_job = await tx.jobs.enqueue(EmailJobs.send_password_reset, user.id, reset.id)
            reminder_job = await tx.jobs.schedule(
                RESET_REMINDER_DELAY, EmailJobs.remind_password_reset, reset.id
            )
        return PasswordResetRequested(
            reset_id=reset.id, email_job_id=email_job, reminder_job_id=reminder_job
        )
