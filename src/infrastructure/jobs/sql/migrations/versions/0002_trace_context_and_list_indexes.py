"""Jobs keep their trace context; indexes for operators' lists and outcomes per minute.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = [
    ("jobs", ("created_at", "id")),  # list sorted by creation, keyset by id
    ("jobs", ("state_at", "id")),  # list sorted by last change, keyset by id
    ("job_history", ("state", "at")),  # succeeded and failed per minute
]


def _names() -> tuple[str | None, str]:
    attributes = context.config.attributes
    return attributes.get("schema"), attributes.get("prefix", "")


def _index_name(prefix: str, table: str, columns: tuple[str, ...]) -> str:
    return f"ix_{prefix}{table}_{'_'.join(columns)}"


def upgrade() -> None:
    schema, p = _names()
    op.add_column(p + "jobs", sa.Column("trace_context", sa.UnicodeText()), schema=schema)
    for table, columns in INDEXES:
        op.create_index(_index_name(p, table, columns), p + table, list(columns), schema=schema)


def downgrade() -> None:
    schema, p = _names()
    for table, columns in reversed(INDEXES):
        op.drop_index(_index_name(p, table, columns), table_name=p + table, schema=schema)
    op.drop_column(p + "jobs", "trace_context", schema=schema)
