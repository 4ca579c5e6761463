"""The SQL transaction's writes about claimed jobs: claim, extend, finish, unclaim; and the
history and log rows every write adds. Writes about a claim carry its lease token, so a worker
that lost its lease cannot overwrite the next run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from application.jobs import JobId, JobState, LogLine
from infrastructure.jobs.engine.model import Finish, Job, Move, Output
from infrastructure.jobs.engine.states import ACTIVE_STATES
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.dialect import Dialect
from infrastructure.jobs.sql.tables import JobTables
from infrastructure.jobs.sql.transactions import ENQUEUED_FLAG

VOID_CLAIM = {"lease_token": None, "lease_until": None, "server_id": None}


class SqlClaims:
    def __init__(self, conn: sa.Connection, tables: JobTables, dialect: Dialect) -> None:
        self._conn = conn
        self._tables = tables
        self._jobs = tables.jobs
        self._dialect = dialect

    def claim(
        self,
        queue: str,
        *,
        limit: int,
        now: dt.datetime,
        token: UUID,
        lease_until: dt.datetime,
        server_id: str,
    ) -> list[Job]:
        jobs = self._jobs
        oldest = self._dialect.skip_locked(
            sa.select(jobs.c.id)
            .where(jobs.c.state == JobState.ENQUEUED, jobs.c.queue == queue)
            .order_by(jobs.c.state_at)
            .limit(limit),
            jobs,
        )
        claim = jobs.update().values(
            state=JobState.PROCESSING,
            state_at=now,
            attempt=jobs.c.attempt + 1,
            lease_token=token,
            lease_until=lease_until,
            server_id=server_id,
        )
        if self._dialect.update_returning:  # one statement
            in_oldest = jobs.c.id.in_(oldest.scalar_subquery())
            found = self._conn.execute(claim.where(in_oldest).returning(*jobs.c)).mappings()
            return [rows.job_of(row) for row in found]
        ids = list(self._conn.scalars(oldest))
        if not ids:
            return []
        self._conn.execute(claim.where(jobs.c.id.in_(ids)))
        found = self._conn.execute(sa.select(jobs).where(jobs.c.id.in_(ids))).mappings()
        return [rows.job_of(row) for row in found]

    def extend(self, job_id: JobId, token: UUID, lease_until: dt.datetime, output: Output) -> bool:
        extended = self._conn.execute(
            self._jobs.update()
            .where(*self._held(job_id, token))
            .values(lease_until=lease_until, **_progress(output))
        )
        return bool(extended.rowcount)

    def write_finishes(self, results: Sequence[Finish], now: dt.datetime) -> set[JobId]:
        plain = [r for r in results if _plain_success(r)]
        written = self._write_plain_successes(plain, now)
        for result in results:
            if not _plain_success(result) and self._write_finish(result, now):
                written.add(result.job_id)
        return written

    def _write_plain_successes(self, results: Sequence[Finish], now: dt.datetime) -> set[JobId]:
        """Successes without a result, one statement per claim (they share its token)."""
        jobs, written = self._jobs, set[JobId]()
        for token in {r.token for r in results}:
            ids = [r.job_id for r in results if r.token == token]
            held = [
                jobs.c.id.in_(ids),
                jobs.c.lease_token == token,
                jobs.c.state == JobState.PROCESSING,
            ]
            update = jobs.update().values(
                state=JobState.SUCCEEDED,
                state_at=now,
                result="null",
                progress=100.0,
                active_key=None,
                **VOID_CLAIM,
            )
            if self._dialect.update_returning:
                written |= set(self._conn.scalars(update.where(*held).returning(jobs.c.id)))
                continue
            query = self._dialect.for_update(sa.select(jobs.c.id).where(*held), jobs)
            mine = list(self._conn.scalars(query))
            if mine:
                self._conn.execute(update.where(jobs.c.id.in_(mine)))
            written |= {JobId(i) for i in mine}
        return written

    def _write_finish(self, result: Finish, now: dt.datetime) -> bool:
        jobs = self._jobs
        update = (
            jobs.update()
            .where(*self._held(result.job_id, result.token))
            .values(
                state=result.state,
                state_at=now,
                run_at=jobs.c.run_at if result.run_at is None else result.run_at,  # kept shown
                active_key=jobs.c.unique_key if result.state in ACTIVE_STATES else None,
                **VOID_CLAIM,
                **_finish_values(result),
            )
        )
        return bool(self._conn.execute(update).rowcount == 1)

    def unclaim(self, claims: Sequence[tuple[JobId, UUID]], now: dt.datetime) -> list[JobId]:
        released = []
        for job_id, token in claims:
            update = (
                self._jobs.update()
                .where(*self._held(job_id, token))
                .values(
                    state=JobState.ENQUEUED,
                    state_at=now,
                    attempt=self._jobs.c.attempt - 1,
                    **VOID_CLAIM,
                )
            )
            if self._conn.execute(update).rowcount:
                released.append(job_id)
        return released

    def record(self, moves: Sequence[Move], now: dt.datetime) -> None:
        if moves:
            self._conn.execute(
                self._tables.history.insert(),
                [
                    {
                        "job_id": m.job_id,
                        "state": m.to,
                        "at": now,
                        "reason": m.reason,
                        "data": rows.dump(m.data) if m.data else None,
                    }
                    for m in moves
                ],
            )

    def save_logs(self, lines: Sequence[tuple[JobId, LogLine]]) -> None:
        if lines:
            self._conn.execute(
                self._tables.logs.insert(),
                [
                    {"job_id": job_id, "at": x.at, "level": x.level, "message": x.message}
                    for job_id, x in lines
                ],
            )

    def wake_workers(self) -> None:
        """Wake idle workers, here and (PostgreSQL) in other processes, once this transaction
        commits."""
        if not self._conn.info.get(ENQUEUED_FLAG):
            self._conn.info[ENQUEUED_FLAG] = True
            if self._dialect.notify is not None:
                self._conn.execute(self._dialect.notify)

    def _held(self, job_id: JobId, token: UUID) -> list[sa.ColumnElement[bool]]:
        jobs = self._jobs
        return [
            jobs.c.id == job_id,
            jobs.c.lease_token == token,
            jobs.c.state == JobState.PROCESSING,
        ]


def _plain_success(result: Finish) -> bool:
    return result.state is JobState.SUCCEEDED and result.result is None and result.queue is None


def _progress(output: Output) -> dict[str, Any]:
    return {} if output.progress is None else {"progress": output.progress}


def _finish_values(result: Finish) -> dict[str, Any]:
    values: dict[str, Any] = _progress(result.output)
    if result.state is JobState.SUCCEEDED:
        values.update(result=rows.dump(result.result), progress=100.0)
    if result.error is not None:
        values.update(
            error_type=result.error.type[:300],
            error_message=result.error.message,
            error_traceback=result.error.traceback,
        )
    if result.queue is not None:
        values["queue"] = result.queue
    return values
