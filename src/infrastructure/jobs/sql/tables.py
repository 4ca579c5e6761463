"""The job store's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """An aware UTC datetime, stored as naive UTC with microseconds on every dialect
    (DATETIME(6) on MariaDB, DATETIME2(6) on SQL Server).

    Through ODBC on MariaDB/MySQL (`mysql+pyodbc`) the value is bound as an ISO string: the
    MariaDB driver drops the microseconds of a bound datetime (it reports a scale of 0)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "mssql":
            datetime2 = mssql.DATETIME2(precision=6)  # type: ignore[no-untyped-call]
            return dialect.type_descriptor(datetime2)
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the job store")
        utc = value.astimezone(dt.UTC).replace(tzinfo=None)
        if dialect.driver == "pyodbc" and dialect.name in ("mysql", "mariadb"):
            return utc.isoformat(sep=" ", timespec="microseconds")
        return utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def partial(condition: str) -> dict[str, Any]:
    """Index only the rows that match, where the database can (PostgreSQL, SQLite, SQL Server);
    MariaDB indexes every row."""
    where = sa.text(condition)
    return {"postgresql_where": where, "sqlite_where": where, "mssql_where": where}


JOB_INDEXES: list[tuple[tuple[str, ...], str, bool]] = [
    (("state", "queue", "state_at"), "state = 'enqueued'", False),  # claim: oldest per queue
    (("state", "run_at"), "state = 'scheduled'", False),  # due scheduled jobs
    (("state", "lease_until"), "state = 'processing'", False),  # expired leases
    (("state", "state_at"), "state IN ('succeeded', 'failed', 'deleted')", False),  # retention
    (("parent_id",), "parent_id IS NOT NULL", False),  # continuations of a finished job
    (("batch_id", "state"), "batch_id IS NOT NULL", False),  # is the batch finished?
    (("active_key",), "active_key IS NOT NULL", True),  # one active job per unique key
    (("expires_at",), "expires_at IS NOT NULL", False),  # jobs with a deadline
]
"""The jobs table's indexes: columns, the rows worth indexing, unique."""


LIST_INDEXES: list[tuple[str, ...]] = [("created_at", "id"), ("state_at", "id")]
"""The jobs table's full indexes, for operators' lists: each sort order, keyset by id."""


def job_indexes() -> list[sa.Index]:
    partial_indexes = [
        sa.Index(None, *columns, unique=unique, **partial(where))
        for columns, where, unique in JOB_INDEXES
    ]
    return partial_indexes + [sa.Index(None, *columns) for columns in LIST_INDEXES]


def build_metadata(schema: str | None = None, prefix: str = "") -> sa.MetaData:
    """The tables, in `schema` (where the database has schemas) and with a name prefix."""
    metadata = sa.MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    key, text = sa.Unicode(200), sa.UnicodeText()  # NVARCHAR on SQL Server
    sa.Table(
        f"{prefix}jobs",
        metadata,
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("handler", key, nullable=False),
        sa.Column("queue", sa.Unicode(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("state_at", UTCDateTime(), nullable=False),
        sa.Column("run_at", UTCDateTime()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry", text, nullable=False),
        sa.Column("timeout_seconds", sa.Float()),
        sa.Column("unique_key", key),
        sa.Column("active_key", key),
        sa.Column("parent_id", sa.Uuid()),
        sa.Column("continue_on", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.Uuid()),
        sa.Column("recurring_id", key),
        sa.Column("lease_token", sa.Uuid()),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("server_id", key),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("result", text),
        sa.Column("error_type", sa.Unicode(300)),
        sa.Column("error_message", text),
        sa.Column("error_traceback", text),
        sa.Column("trace_context", text),  # W3C trace context as JSON; NULL when empty
        sa.Column("expires_at", UTCDateTime()),  # deleted as expired if not started by then
        *job_indexes(),
    )
    sa.Table(
        f"{prefix}job_history",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("data", text),
        sa.Index(None, "job_id"),
        sa.Index(None, "state", "at"),  # outcomes per minute
    )
    sa.Table(
        f"{prefix}job_logs",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("message", text, nullable=False),
        sa.Index(None, "job_id"),
    )
    sa.Table(
        f"{prefix}batches",
        metadata,
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("continuation_id", sa.Uuid()),
        sa.Column("continue_on", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Index(None, "created_at"),  # retention
    )
    sa.Table(
        f"{prefix}recurring_jobs",
        metadata,
        sa.Column("id", key, primary_key=True),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("misfire", text, nullable=False),
        sa.Column("handler", key, nullable=False),
        sa.Column("payload", text, nullable=False),
        sa.Column("queue", sa.Unicode(100), nullable=False),
        sa.Column("retry", text, nullable=False),
        sa.Column("timeout_seconds", sa.Float()),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", UTCDateTime()),
        sa.Column("last_run_at", UTCDateTime()),
        sa.Column("last_job_id", sa.Uuid()),
        sa.Index(None, "paused", "next_run_at"),
    )
    sa.Table(
        f"{prefix}recurring_ticks",
        metadata,
        sa.Column("recurring_id", key, primary_key=True),
        sa.Column("fire_at", UTCDateTime(), primary_key=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Index(None, "fire_at"),  # retention
    )
    sa.Table(
        f"{prefix}job_requests",  # idempotency keys, kept for the retention period
        metadata,
        sa.Column("idempotency_key", key, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Index(None, "at"),  # expiry
    )
    sa.Table(
        f"{prefix}servers",
        metadata,
        sa.Column("id", key, primary_key=True),
        sa.Column("queues", text, nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    )
    sa.Table(  # messages for a broker (the dramatiq adapter), written with the state change
        f"{prefix}job_outbox",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("job_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("queue", sa.Unicode(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Index(None, "sent_at", "id"),
    )
    return metadata


@dataclass(frozen=True, slots=True)
class JobTables:
    """The store's tables by role, whatever their schema and prefix."""

    jobs: sa.Table
    history: sa.Table
    logs: sa.Table
    batches: sa.Table
    recurring: sa.Table
    ticks: sa.Table
    servers: sa.Table
    outbox: sa.Table
    requests: sa.Table

    @classmethod
    def of(cls, metadata: sa.MetaData, prefix: str) -> JobTables:
        named = {table.name.removeprefix(prefix): table for table in metadata.tables.values()}
        return cls(
            jobs=named["jobs"],
            history=named["job_history"],
            logs=named["job_logs"],
            batches=named["batches"],
            recurring=named["recurring_jobs"],
            ticks=named["recurring_ticks"],
            servers=named["servers"],
            outbox=named["job_outbox"],
            requests=named["job_requests"],
        )
