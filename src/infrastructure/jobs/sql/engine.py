"""Engines per dialect: SQLite gets WAL, a busy timeout and write transactions that lock at
BEGIN (pysqlite's own implicit transactions are turned off so SQLAlchemy's BEGIN is ours)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event


def create_engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """A SQLAlchemy engine set up for the job store; a SQLite file's folder is created."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    # No pre-ping (a round trip per checkout): connections that die are invalidated when a
    # statement fails, and the engine's loops retry.
    kwargs.setdefault("pool_recycle", 3600)
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        # Each statement sees what others committed before it (batch and continuation checks
        # rely on it); MariaDB's default, REPEATABLE READ, would read an older snapshot.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    return sa.create_engine(parsed, **kwargs)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> sa.Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(connection: sqlite3.Connection, _record: object) -> None:
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
