"""Writing rows the way every repository port asks: store, or replace the one with the id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def upsert(session: Session, table: sa.Table, values: Mapping[str, Any]) -> None:
    """Replace the row with `values["id"]`, or insert it. (An UPDATE first, then an INSERT:
    the one way every supported database shares.)"""
    key = table.c.id == values["id"]
    updated = session.execute(sa.update(table).where(key).values(**values))
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(sa.insert(table).values(**values))
