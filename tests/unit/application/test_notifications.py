from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from application.jobs import JobState
from application.use_cases import SendBulkNotification
from domain.users import User
from tests.unit.application.conftest import Service


async def users_named(service: Service, *names: str) -> list[UUID]:
    ids = []
    for name in names:
        user = User(
            id=uuid4(), email=f"{name}@example.com", name=name, registered_at=service.clock.now()
        )
        await service.adapters.users.add(user)
        ids.append(user.id)
    return ids


def summaries(service: Service) -> list[str]:
    return [m.body for m in service.adapters.email.sent_to("ops@example.com")]


async def test_bulk_notification_notifies_everyone_then_sends_one_summary(
    service: Service,
) -> None:
    # Given three users
    user_ids = await users_named(service, "ann", "bob", "cid")

    # When they are notified in bulk
    sent = await SendBulkNotification(service.uow)(
        user_ids, "Maintenance at 22:00", "ops@example.com"
    )

    # Then a first worker round delivers the three notifications, and no summary yet
    assert await service.worker.run_once() == 3
    for user_id in user_ids:
        [notification] = await service.adapters.notifications.list_for_user(user_id)
        assert (notification.message, notification.bulk_id) == (
            "Maintenance at 22:00",
            sent.bulk_id,
        )
    assert summaries(service) == []

    # And once the batch is finished, exactly one summary goes to the sender
    await service.drain()
    assert summaries(service) == [f"Your notification {sent.bulk_id} reached 3 of 3 users."]
    batch = await service.jobs.get_batch(sent.batch_id)
    assert (batch.total, batch.counts[JobState.SUCCEEDED]) == (3, 3)
    assert batch.continuation_id == sent.summary_job_id


async def test_a_delivery_to_a_user_who_is_gone_fails_at_once_and_the_summary_says_so(
    service: Service,
) -> None:
    # Given two users and an id that belongs to nobody
    user_ids = [*await users_named(service, "ann", "bob"), uuid4()]
    sent = await SendBulkNotification(service.uow)(user_ids, "Hello", "ops@example.com")

    # When the deliveries run once
    await service.drain()

    # Then the one to nobody failed for good without waiting for retries (the user will not
    # come back), and the summary counts the two that were reached
    assert await service.state(sent.notification_job_ids[2]) is JobState.FAILED
    assert summaries(service) == [f"Your notification {sent.bulk_id} reached 2 of 3 users."]


async def test_bulk_notification_needs_recipients(service: Service) -> None:
    with pytest.raises(ValueError, match="at least one user"):
        await SendBulkNotification(service.uow)([], "Hello", "ops@example.com")
    assert await service.drain() == 0
