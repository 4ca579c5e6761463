from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from application.jobs import JobState
from application.use_cases import ForgotPassword, RegisterUser
from domain.users import EmailAlreadyRegistered, User
from tests.unit.application.conftest import Service


def register_user(service: Service) -> RegisterUser:
    return RegisterUser(service.uow, service.adapters.users, service.clock)


def forgot_password(service: Service) -> ForgotPassword:
    a = service.adapters
    return ForgotPassword(service.uow, a.users, a.resets, service.clock)


async def existing_user(service: Service) -> User:
    user = User(id=uuid4(), email="ada@example.com", name="Ada", registered_at=service.clock.now())
    await service.adapters.users.add(user)
    return user


def subjects(service: Service) -> list[str]:
    return [message.subject for message in service.adapters.email.sent]


async def test_registering_a_user_sends_the_welcome_email_in_the_background(
    service: Service,
) -> None:
    # When a user registers
    registration = await register_user(service)("ada@example.com", "Ada")

    # Then nothing is sent until a worker runs the welcome job, which is unique per user
    assert service.adapters.email.sent == []
    job = await service.job(registration.welcome_job_id)
    assert job.unique_key == f"welcome:{registration.user_id}"
    assert job.queue == "critical"

    await service.drain()

    [message] = service.adapters.email.sent
    assert (message.to, message.subject) == ("ada@example.com", "Welcome!")
    assert await service.state(registration.welcome_job_id) is JobState.SUCCEEDED
    user = await service.adapters.users.get(registration.user_id)
    assert user is not None and user.welcomed_at == service.clock.now()


async def test_registering_a_taken_email_is_refused_and_sends_nothing_more(
    service: Service,
) -> None:
    register = register_user(service)
    await register("ada@example.com", "Ada")

    with pytest.raises(EmailAlreadyRegistered):
        await register("ADA@example.com", "Impostor")

    await service.drain()
    assert subjects(service) == ["Welcome!"]


async def test_forgot_password_emails_now_and_reminds_only_after_an_hour(
    service: Service,
) -> None:
    # Given a user who forgot their password
    await existing_user(service)
    requested = await forgot_password(service)("ada@example.com")
    assert requested is not None

    # When the workers run now, only the reset email goes out
    await service.drain()
    assert subjects(service) == ["Reset your password"]
    reminder = await service.job(requested.reminder_job_id)
    assert reminder.state is JobState.SCHEDULED
    assert reminder.run_at == service.clock.now() + dt.timedelta(hours=1)

    # A second before the hour, still no reminder
    await service.advance_and_drain(dt.timedelta(minutes=59, seconds=59))
    assert subjects(service) == ["Reset your password"]

    # Then, the reset being unused, the reminder is sent after an hour
    await service.advance_and_drain(dt.timedelta(seconds=1))
    assert subjects(service) == ["Reset your password", "Your password reset is waiting"]


async def test_no_reminder_once_the_reset_was_used(service: Service) -> None:
    await existing_user(service)
    requested = await forgot_password(service)("ada@example.com")
    assert requested is not None
    await service.drain()

    # Given the user reset their password ten minutes later
    reset = await service.adapters.resets.get(requested.reset_id)
    assert reset is not None
    await service.adapters.resets.add(reset.used(service.clock.now() + dt.timedelta(minutes=10)))

    # When the hour has passed, the reminder job runs and sends nothing
    await service.advance_and_drain(dt.timedelta(hours=1))
    assert await service.state(requested.reminder_job_id) is JobState.SUCCEEDED
    assert subjects(service) == ["Reset your password"]


async def test_forgot_password_for_an_unknown_address_does_nothing(service: Service) -> None:
    assert await forgot_password(service)("nobody@example.com") is None

    assert await service.advance_and_drain(dt.timedelta(hours=2)) == 0
    assert service.adapters.email.sent == []
