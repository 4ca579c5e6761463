from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from domain.notifications import Notification, NotificationJobs
from domain.users import User, UserNotFound
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import (
    InMemoryNotificationRepository,
    InMemoryUserRepository,
)
from tests.unit.domain.fakes import RecordingContext


def jobs_for(context: RecordingContext, users, notifications, email, clock) -> NotificationJobs:
    return NotificationJobs(users, notifications, email, clock, context)


@pytest.fixture
def jobs(users, notifications, email, clock, context) -> NotificationJobs:
    return jobs_for(context, users, notifications, email, clock)


@pytest.fixture
async def ada(users: InMemoryUserRepository, clock: FakeClock) -> User:
    user = User(id=uuid4(), email="ada@example.com", name="Ada", registered_at=clock.now())
    await users.add(user)
    return user


def test_a_notification_needs_a_message(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="needs a message"):
        Notification(id=uuid4(), user_id=uuid4(), message="  ", created_at=clock.now())


async def test_notify_puts_the_message_in_the_inbox(
    jobs: NotificationJobs,
    ada: User,
    notifications: InMemoryNotificationRepository,
    context: RecordingContext,
) -> None:
    notification_id = await jobs.notify(ada.id, "Maintenance tonight")

    [notification] = await notifications.list_for_user(ada.id)
    assert notification.id == notification_id == context.job_id
    assert notification.message == "Maintenance tonight"
    assert context.log_lines == [f"notified user {ada.id}"]


async def test_the_same_job_run_twice_leaves_one_notification(
    users, notifications: InMemoryNotificationRepository, email, clock: FakeClock, ada: User
) -> None:
    # Given a job delivered twice: two executions with the same job id
    job_id = uuid4()
    for attempt in (1, 2):
        context = RecordingContext(job_id=job_id, attempt=attempt)
        await jobs_for(context, users, notifications, email, clock).notify(ada.id, "Hi")

    assert len(await notifications.list_for_user(ada.id)) == 1


async def test_notify_an_unknown_user_fails(
    jobs: NotificationJobs, notifications: InMemoryNotificationRepository
) -> None:
    unknown = uuid4()
    with pytest.raises(UserNotFound):
        await jobs.notify(unknown, "Hi")
    assert await notifications.list_for_user(unknown) == []


async def test_bulk_summary_counts_the_delivered_notifications(
    jobs: NotificationJobs,
    notifications: InMemoryNotificationRepository,
    email: LoggingEmailSender,
    clock: FakeClock,
) -> None:
    bulk_id = uuid4()
    for user_id in (uuid4(), uuid4()):
        await notifications.add(
            Notification(
                id=uuid4(), user_id=user_id, message="Hi", created_at=clock.now(), bulk_id=bulk_id
            )
        )
    await notifications.add(
        Notification(id=uuid4(), user_id=uuid4(), message="Other", created_at=clock.now())
    )

    delivered = await jobs.send_bulk_summary(bulk_id, "ops@example.com", 3)

    assert delivered == 2
    [message] = email.sent_to("ops@example.com")
    assert "reached 2 of 3 users" in message.body


def test_notification_times_are_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Notification(id=uuid4(), user_id=uuid4(), message="Hi", created_at=dt.datetime(2026, 1, 1))
