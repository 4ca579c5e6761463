"""The transactional outbox: a row per job that becomes enqueued, written by the transaction
that enqueues it, so a rolled-back transaction publishes nothing and a committed one is never
left unpublished (the relay publishes the rows, `relay.py`).

A job enters `enqueued` through four store writes only: a new job stored enqueued, a move
(due, released continuation or batch, requeue, rescue), an outcome (a retry without delay)
and a release (server stopping). `OutboxTransaction` adds the outbox row after each of them;
the lifecycle itself is unchanged. The row stays, marked sent, until a worker claims the job,
so a message the broker lost can be published again (`redeliver_stale`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

import sqlalchemy as sa

from application.jobs import JobId, JobState
from infrastructure.jobs.engine.model import Claim, Finish, Job, Move
from infrastructure.jobs.engine.running import claimed_move
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.jobs.sql.tables import UTCDateTime
from infrastructure.jobs.sql.transaction import SqlTransaction


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A job to announce on its queue."""

    job_id: JobId
    queue: str


class OutboxTransaction(SqlTransaction):
    """The SQL transaction, with an outbox row for each job it makes enqueued."""

    def insert_jobs(self, jobs: Sequence[Job], now: dt.datetime) -> None:
        super().insert_jobs(jobs, now)
        enqueued = [job for job in jobs if job.state is JobState.ENQUEUED]
        if enqueued:  # new jobs: no row of theirs can exist yet
            self._conn.execute(
                self._tables.outbox.insert(),
                [{"job_id": job.id, "queue": job.queue, "created_at": now} for job in enqueued],
            )

    def move(self, moves: Sequence[Move], now: dt.datetime, *, contested: bool = False) -> None:
        super().move(moves, now, contested=contested)
        self._announce([move.job_id for move in moves if move.to is JobState.ENQUEUED], now)

    def write_finishes(self, results: Sequence[Finish], now: dt.datetime) -> set[JobId]:
        written = super().write_finishes(results, now)
        retried = [
            r.job_id for r in results if r.job_id in written and r.state is JobState.ENQUEUED
        ]
        self._announce(retried, now)
        return written

    def unclaim(self, claims: Sequence[tuple[JobId, UUID]], now: dt.datetime) -> list[JobId]:
        released = super().unclaim(claims, now)
        self._announce(released, now)
        return released

    def _announce(self, job_ids: Collection[JobId], now: dt.datetime) -> None:
        """A fresh row for each of these stored jobs, on the queue it is in now."""
        if not job_ids:
            return
        outbox, jobs = self._tables.outbox, self._jobs
        self._conn.execute(outbox.delete().where(outbox.c.job_id.in_(job_ids)))
        stored = sa.select(jobs.c.id, jobs.c.queue, sa.literal(now, UTCDateTime())).where(
            jobs.c.id.in_(job_ids), jobs.c.state == JobState.ENQUEUED
        )
        self._conn.execute(outbox.insert().from_select(["job_id", "queue", "created_at"], stored))

    # --- the relay's and the consumer's verbs -----------------------------------------------
    def pending(self, limit: int) -> list[tuple[int, OutboxMessage]]:
        """Up to `limit` unsent rows, oldest first, locked (rows other relays hold skipped)."""
        outbox = self._tables.outbox
        query = (
            sa.select(outbox.c.id, outbox.c.job_id, outbox.c.queue)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        found = self._conn.execute(self._dialect.skip_locked(query, outbox))
        return [(row.id, OutboxMessage(JobId(row.job_id), row.queue)) for row in found]

    def mark_sent(self, row_ids: Sequence[int], now: dt.datetime) -> None:
        outbox = self._tables.outbox
        update = outbox.update().where(outbox.c.id.in_(row_ids)).values(sent_at=now)
        self._conn.execute(update)

    def redeliver_stale(self, sent_before: dt.datetime, now: dt.datetime) -> int:
        """Mark unsent again the rows of jobs still enqueued whose message went out before
        `sent_before` (the broker may have lost it), and write one for jobs enqueued since
        before then that have none (enqueued before a switch from the `sql` backend); drop
        the rows of jobs no longer enqueued. Returns how many messages go out again."""
        outbox, jobs = self._tables.outbox, self._jobs
        enqueued = sa.select(jobs.c.id).where(jobs.c.state == JobState.ENQUEUED)
        self._conn.execute(outbox.delete().where(outbox.c.job_id.not_in(enqueued)))
        stale = outbox.update().where(outbox.c.sent_at < sent_before).values(sent_at=None)
        redelivered = int(self._conn.execute(stale).rowcount)
        unannounced = sa.select(jobs.c.id, jobs.c.queue, sa.literal(now, UTCDateTime())).where(
            jobs.c.state == JobState.ENQUEUED,
            jobs.c.state_at < sent_before,
            jobs.c.id.not_in(sa.select(outbox.c.job_id)),
        )
        columns = ["job_id", "queue", "created_at"]
        added = self._conn.execute(outbox.insert().from_select(columns, unannounced))
        return redelivered + max(0, int(added.rowcount))

    def claim_by_ids(
        self,
        job_ids: Collection[JobId],
        *,
        now: dt.datetime,
        token: UUID,
        lease_until: dt.datetime,
        server_id: str,
    ) -> list[Job]:
        """Claim those of these jobs that are enqueued, as `claim` does by queue; their
        outbox rows go (a claimed job needs no message, and another is stale)."""
        outbox, jobs = self._tables.outbox, self._jobs
        self._conn.execute(outbox.delete().where(outbox.c.job_id.in_(job_ids)))
        enqueued = [jobs.c.id.in_(job_ids), jobs.c.state == JobState.ENQUEUED]
        claim = jobs.update().values(
            state=JobState.PROCESSING,
            state_at=now,
            attempt=jobs.c.attempt + 1,
            lease_token=token,
            lease_until=lease_until,
            server_id=server_id,
        )
        if self._dialect.update_returning:
            found = self._conn.execute(claim.where(*enqueued).returning(*jobs.c)).mappings()
            return [rows.job_of(row) for row in found]
        query = self._dialect.for_update(sa.select(jobs.c.id).where(*enqueued), jobs)
        ids = list(self._conn.scalars(query))
        if not ids:
            return []
        self._conn.execute(claim.where(jobs.c.id.in_(ids)))
        found = self._conn.execute(sa.select(jobs).where(jobs.c.id.in_(ids))).mappings()
        return [rows.job_of(row) for row in found]


Publish = Callable[[Sequence[OutboxMessage]], None]
"""Sends messages to the broker, returning once it has them (publisher confirms); raises
when it cannot."""


class OutboxStore(SQLAlchemyJobStore):
    """The SQL store whose transactions fill the outbox, with the relay's and the consumer's
    verbs. PostgreSQL's one-statement create is off: it would skip the outbox."""

    transaction_type = OutboxTransaction

    def __init__(self, database: sa.Engine, *, schema: str | None = None, prefix: str = "") -> None:
        super().__init__(database, schema=schema, prefix=prefix, one_statement_verbs=False)

    async def claim_delivered(
        self,
        job_ids: Sequence[JobId],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        server_id: str,
    ) -> list[Claim]:
        """Claim the jobs that delivered messages name and that are still enqueued, in the
        messages' order; the others are duplicates or stale and are left alone."""
        token, lease_until = uuid4(), now + lease

        def work(tx: OutboxTransaction) -> list[Job]:
            claimed = tx.claim_by_ids(
                job_ids, now=now, token=token, lease_until=lease_until, server_id=server_id
            )
            tx.record([claimed_move(job, server_id) for job in claimed], now)
            return claimed

        claimed = {job.id: job for job in await self.transaction(lambda tx: work(_outbox_of(tx)))}
        return [
            Claim(job=claimed[job_id], token=token, lease_until=lease_until)
            for job_id in dict.fromkeys(job_ids)
            if job_id in claimed
        ]

    async def publish_pending(self, publish: Publish, *, now: dt.datetime, limit: int) -> list[str]:
        """Publish up to `limit` unsent rows and mark them sent, in one transaction: if the
        broker fails, nothing is marked (a message sent before the failure may go twice,
        which the consumer tolerates). Returns the queues of the messages published."""

        def work(tx: OutboxTransaction) -> list[str]:
            found = tx.pending(limit)
            if found:
                publish([message for _, message in found])
                tx.mark_sent([row_id for row_id, _ in found], now)
            return [message.queue for _, message in found]

        return await self.transaction(lambda tx: work(_outbox_of(tx)))

    async def redeliver_stale(self, *, sent_before: dt.datetime, now: dt.datetime) -> int:
        return await self.transaction(lambda tx: _outbox_of(tx).redeliver_stale(sent_before, now))


def _outbox_of(tx: object) -> OutboxTransaction:
    assert isinstance(tx, OutboxTransaction)
    return tx
