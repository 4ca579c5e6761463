"""Initial schema: jobs, history, logs, batches, recurring jobs, tick ledger, servers.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from infrastructure.jobs.sql.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def upgrade() -> None:
    schema, p = _names()
    key, text = sa.Unicode(200), sa.UnicodeText()  # NVARCHAR on SQL Server

    def table(name: str, *columns: sa.Column[object]) -> None:
        op.create_table(
            p + name,
            *columns,
            sa.PrimaryKeyConstraint(*_pk[name], name=f"pk_{p}{name}"),
            schema=schema,
        )

    def index(name: str, *columns: str, unique: bool = False, **kw: Any) -> None:
        op.create_index(
            f"ix_{p}{name}_{'_'.join(columns)}",
            p + name,
            list(columns),
            unique=unique,
            schema=schema,
            **kw,
        )

    _pk = {
        "jobs": ["id"],
        "job_history": ["id"],
        "job_logs": ["id"],
        "batches": ["id"],
        "recurring_jobs": ["id"],
        "recurring_ticks": ["recurring_id", "fire_at"],
        "servers": ["id"],
    }
    table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
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
    )
    for columns, where, unique in [
        (("state", "queue", "state_at"), "state = 'enqueued'", False),
        (("state", "run_at"), "state = 'scheduled'", False),
        (("state", "lease_until"), "state = 'processing'", False),
        (("state", "state_at"), "state IN ('succeeded', 'failed', 'deleted')", False),
        (("parent_id",), "parent_id IS NOT NULL", False),
        (("batch_id", "state"), "batch_id IS NOT NULL", False),
        (("active_key",), "active_key IS NOT NULL", True),
    ]:
        where_clause = sa.text(where)  # partial where the database has partial indexes
        index(
            "jobs",
            *columns,
            unique=unique,
            postgresql_where=where_clause,
            sqlite_where=where_clause,
            mssql_where=where_clause,
        )
    table(
        "job_history",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("data", text),
    )
    index("job_history", "job_id")
    table(
        "job_logs",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("message", text, nullable=False),
    )
    index("job_logs", "job_id")
    table(
        "batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("continuation_id", sa.Uuid()),
        sa.Column("continue_on", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    table(
        "recurring_jobs",
        sa.Column("id", key, nullable=False),
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
    )
    index("recurring_jobs", "paused", "next_run_at")
    table(
        "recurring_ticks",
        sa.Column("recurring_id", key, nullable=False),
        sa.Column("fire_at", UTCDateTime(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
    )
    table(
        "servers",
        sa.Column("id", key, nullable=False),
        sa.Column("queues", text, nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    schema, p = _names()
    for name in (
        "servers",
        "recurring_ticks",
        "recurring_jobs",
        "batches",
        "job_logs",
        "job_history",
        "jobs",
    ):
        op.drop_table(p + name, schema=schema)
