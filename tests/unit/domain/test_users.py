from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from domain.users import EmailJobs, PasswordReset, User, UserNotFound
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import (
    InMemoryPasswordResetRepository,
    InMemoryUserRepository,
)


@pytest.fixture
def jobs(users, resets, email, clock) -> EmailJobs:
    return EmailJobs(users, resets, email, clock)


@pytest.fixture
async def ada(users: InMemoryUserRepository, clock: FakeClock) -> User:
    user = User(id=uuid4(), email="ada@example.com", name="Ada", registered_at=clock.now())
    await users.add(user)
    return user


async def issue_reset(resets: InMemoryPasswordResetRepository, user: User, now: dt.datetime):
    reset = PasswordReset.issue(reset_id=uuid4(), user_id=user.id, token="s3cret", now=now)
    await resets.add(reset)
    return reset


def test_a_user_needs_an_aware_registration_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        User(id=uuid4(), email="a@b.c", name="A", registered_at=dt.datetime(2026, 1, 1))


def test_a_user_needs_an_email_address(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="not an email"):
        User(id=uuid4(), email="nobody", name="A", registered_at=clock.now())


async def test_welcome_is_sent_once(
    jobs: EmailJobs, ada: User, email: LoggingEmailSender, users: InMemoryUserRepository
) -> None:
    # Given a new user, when the welcome job runs twice (at-least-once delivery)
    first = await jobs.send_welcome(ada.id)
    second = await jobs.send_welcome(ada.id)

    # Then the user got one welcome email and is marked as welcomed
    assert (first, second) == (True, False)
    [message] = email.sent
    assert (message.to, message.subject) == ("ada@example.com", "Welcome!")
    assert "Ada" in message.body
    stored = await users.get(ada.id)
    assert stored is not None and stored.welcomed_at is not None


async def test_welcome_for_an_unknown_user_fails(
    jobs: EmailJobs, email: LoggingEmailSender
) -> None:
    with pytest.raises(UserNotFound):
        await jobs.send_welcome(uuid4())
    assert email.sent == []


async def test_password_reset_email_carries_the_token(
    jobs: EmailJobs, ada: User, resets, email: LoggingEmailSender, clock: FakeClock
) -> None:
    reset = await issue_reset(resets, ada, clock.now())

    await jobs.send_password_reset(ada.id, reset.id)

    [message] = email.sent_to("ada@example.com")
    assert message.subject == "Reset your password"
    assert "s3cret" in message.body


async def test_reminder_is_sent_while_the_reset_is_unused(
    jobs: EmailJobs, ada: User, resets, email: LoggingEmailSender, clock: FakeClock
) -> None:
    reset = await issue_reset(resets, ada, clock.now())
    clock.advance(dt.timedelta(hours=1))

    assert await jobs.remind_password_reset(reset.id) is True

    [message] = email.sent
    assert message.subject == "Your password reset is waiting"


async def test_reminder_does_nothing_once_the_reset_was_used(
    jobs: EmailJobs, ada: User, resets, email: LoggingEmailSender, clock: FakeClock
) -> None:
    reset = await issue_reset(resets, ada, clock.now())
    await resets.add(reset.used(clock.now() + dt.timedelta(minutes=5)))
    clock.advance(dt.timedelta(hours=1))

    assert await jobs.remind_password_reset(reset.id) is False
    assert email.sent == []


async def test_reminder_does_nothing_once_the_reset_expired(
    jobs: EmailJobs, ada: User, resets, email: LoggingEmailSender, clock: FakeClock
) -> None:
    reset = await issue_reset(resets, ada, clock.now())
    clock.set(reset.expires_at)

    assert await jobs.remind_password_reset(reset.id) is False
    assert email.sent == []
