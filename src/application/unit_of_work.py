"""The unit of work: one business transaction, shared by the repositories and the job port.

Inside `async with uow.begin() as tx:` every repository call joins the transaction, and jobs
created through `tx.jobs` are written in it too: the rows and the jobs commit together when the
block ends, or neither exists when it raises. Outside a block each repository call is a
transaction of its own (job handlers work that way).

Whether jobs join depends on the job backend: the SQL backend writes them in the transaction;
a backend that cannot (memory, a message broker) creates them at once, and a rollback leaves
them (see docs/persistence.md).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from application.jobs import JobService


class Transaction(Protocol):
    """A business transaction in progress."""

    @property
    def jobs(self) -> JobService:
        """The job port, writing jobs in this transaction where the backend can."""


class UnitOfWork(Protocol):
    """Begins business transactions."""

    def begin(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that commits when the block ends and rolls back when it raises.

        Raises:
            RuntimeError: a transaction is already open in this task (they do not nest).
        """
