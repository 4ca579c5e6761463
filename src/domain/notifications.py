"""In-app notifications, sent one by one or in bulk with a summary for the sender."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.clock import Clock, require_aware
from domain.errors import InvalidValue
from domain.jobs import JobContext
from domain.users import EmailSender, UserNotFound, UserRepository


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A message in a user's inbox; `bulk_id` ties it to a bulk send."""

    id: UUID
    user_id: UUID
    message: str
    created_at: dt.datetime
    bulk_id: UUID | None = None

    def __post_init__(self) -> None:
        if not self.message.strip():
            raise InvalidValue("a notification needs a message")
        require_aware("created_at", self.created_at)


class NotificationRepository(Protocol):
    """Users' notification inboxes."""

    async def add(self, notification: Notification) -> None:
        """Store a notification, or replace the stored one with the same id."""

    async def list_for_user(self, user_id: UUID) -> list[Notification]:
        """The user's notifications, oldest first."""

    async def count_for_bulk(self, bulk_id: UUID) -> int:
        """How many notifications of this bulk send were delivered."""


class NotificationJobs:
    """Delivers notifications and reports on bulk sends."""

    def __init__(
        self,
        users: UserRepository,
        notifications: NotificationRepository,
        email: EmailSender,
        clock: Clock,
        context: JobContext,
    ) -> None:
        self._users = users
        self._notifications = notifications
        self._email = email
        self._clock = clock
        self._context = context

    async def notify(self, user_id: UUID, message: str, bulk_id: UUID | None = None) -> UUID:
        """Put `message` in the user's inbox; returns the notification id.

        The notification takes the job's id, so a job that runs twice (at-least-once
        delivery) still leaves one notification.

        Raises:
            UserNotFound: no user has this id.
        """
        if await self._users.get(user_id) is None:
            raise UserNotFound(user_id)
        notification = Notification(
            id=self._context.job_id,
            user_id=user_id,
            message=message,
            created_at=self._clock.now(),
            bulk_id=bulk_id,
        )
        await self._notifications.add(notification)
        self._context.logger.info("notified user %s", user_id)
        return notification.id

    async def send_bulk_summary(self, bulk_id: UUID, requested_by: str, recipients: int) -> int:
        """Tell the sender how many of the `recipients` got the bulk notification; returns
        that number."""
        delivered = await self._notifications.count_for_bulk(bulk_id)
        await self._email.send(
            requested_by,
            "Bulk notification sent",
            f"Your notification {bulk_id} reached {delivered} of {recipients} users.",
        )
        self._context.logger.info("bulk %s: %d of %d delivered", bulk_id, delivered, recipients)
        return delivered
