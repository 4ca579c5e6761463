"""Engines per dialect: SQLite gets WAL, a busy timeout and write transactions that lock at
BEGIN (pysqlite's own implicit transactions are turned off so SQLAlchemy's BEGIN is ours);
MariaDB/MySQL get READ COMMITTED, and through ODBC (`mysql+pyodbc`) the port and the
found-rows option the MariaDB driver needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

DEFAULT_SCHEMAS = {"mssql": "jobs"}
"""The schema of the job tables when none is configured, by database (others: the default)."""

MYSQL_ODBC_FOUND_ROWS = 2
"""MariaDB/MySQL Connector/ODBC option flag: UPDATE row counts count matched rows, as the
store's compare-and-set writes expect (PyMySQL's dialect sets the same flag)."""

READ_ONLY_OPTION = "jobs_read_only"
"""An execution option of a connection whose transaction only reads: SQLite then begins it
deferred, taking no write lock."""


def default_schema(url: str | sa.URL) -> str | None:
    """The schema of the job tables when none is configured: `jobs` on SQL Server, none (the
    connection's default schema) elsewhere."""
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return None  # not a URL: creating the engine reports it
    return DEFAULT_SCHEMAS.get(backend)


def create_engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """A SQLAlchemy engine set up for the job store; a SQLite file's folder is created."""
    parsed = sa.make_url(url)
    # A failed statement's error (logged, and kept in a job's error) never quotes its bind
    # parameters: they hold job payloads.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    odbc_mysql = parsed.get_driver_name() == "pyodbc" and parsed.get_backend_name() in (
        "mysql",
        "mariadb",
    )
    if odbc_mysql:
        parsed = mysql_odbc_url(parsed)
    # No pre-ping (a round trip per checkout): connections that die are invalidated when a
    # statement fails, and the engine's loops retry.
    kwargs.setdefault("pool_recycle", 3600)
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        # Each statement sees what others committed before it (batch and continuation checks
        # rely on it); MariaDB's default, REPEATABLE READ, would read an older snapshot.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    engine = sa.create_engine(parsed, **kwargs)
    if odbc_mysql:
        _bind_uuids_as_text(engine)
    return engine


def _bind_uuids_as_text(engine: sa.Engine) -> None:
    """pyodbc binds a `uuid.UUID` as an ODBC GUID, which MariaDB Connector/ODBC writes with its
    first three fields byte-swapped: bind UUIDs as text instead, as SQLAlchemy does for the
    other MariaDB drivers without UUID binds. (The dialect turns UUID binds on when it first
    connects, so this runs after that, on every connect.)"""

    @event.listens_for(engine, "connect")
    def _on_connect(_connection: object, _record: object) -> None:
        engine.dialect._allows_uuid_binds = False  # type: ignore[attr-defined]


def mysql_odbc_url(url: sa.URL) -> sa.URL:
    """A `mysql+pyodbc` URL the MariaDB ODBC driver reads as meant: the port moved into the
    query string (SQLAlchemy writes `Server=host,port`, which the driver ignores) and the
    found-rows option flag set."""
    query = dict(url.query)
    if "odbc_connect" in query:
        connect = str(query["odbc_connect"])
        if "option=" not in connect.lower():
            query["odbc_connect"] = f"{connect.rstrip(';')};OPTION={MYSQL_ODBC_FOUND_ROWS}"
        return url.set(query=query)
    keys = {key.lower(): key for key in query}
    if url.port is not None:
        query.setdefault(keys.get("port", "port"), str(url.port))
        url = url._replace(port=None)  # URL.set cannot clear a field
    option_key = keys.get("option", "OPTION")
    option = query.get(option_key, "0")
    options = int(option if isinstance(option, str) else option[-1])
    query[option_key] = str(options | MYSQL_ODBC_FOUND_ROWS)
    return url.set(query=query)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> sa.Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Connections move between threads (work runs in worker threads); SQLite allows it.
    connect_args = {"timeout": 30, "check_same_thread": False}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

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
        # A writing transaction takes the write lock at once, so it waits for it (busy
        # timeout) instead of failing when a read turns into a write; a read takes none.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
