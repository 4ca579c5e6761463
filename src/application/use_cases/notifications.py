"""Notifying many users at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from application.jobs import BatchId, ContinueOn, JobId
from application.unit_of_work import UnitOfWork
from domain.errors import InvalidValue
from domain.notifications import NotificationJobs


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkNotificationSent:
    bulk_id: UUID
    batch_id: BatchId
    notification_job_ids: tuple[JobId, ...]
    summary_job_id: JobId


class SendBulkNotification:
    """Notify each user in its own job, all in one batch, and once every job has finished
    (delivered or given up) email the sender a summary of how many were reached."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(
        self, user_ids: Sequence[UUID], message: str, requested_by: str
    ) -> BulkNotificationSent:
        """Raises:
        ValueError: there is no user to notify.
        """
        recipients = list(dict.fromkeys(user_ids))
        if not recipients:
            raise InvalidValue("a bulk notification needs at least one user")
        bulk_id = uuid4()
        # The summary must come even when some deliveries failed for good: it reports them.
        async with (
            self._uow.begin() as tx,
            tx.jobs.options(continue_on=ContinueOn.ANY_FINISHED).batch() as batch,
        ):
            job_ids = [
                await batch.enqueue(NotificationJobs.notify, user_id, message, bulk_id)
                for user_id in recipients
            ]
            summary = batch.then(
                NotificationJobs.send_bulk_summary, bulk_id, requested_by, len(recipients)
            )
        return BulkNotificationSent(
            bulk_id=bulk_id,
            batch_id=batch.id,
            notification_job_ids=tuple(job_ids),
            summary_job_id=summary,
        )
