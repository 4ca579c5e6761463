"""In-memory tables and their unit of work, for the test adapters of the repository ports.

Each method runs without awaiting, so it is atomic on the event loop. Inside a transaction of
`InMemoryUnitOfWork` every write is journalled and undone if the transaction rolls back; other
tasks see the writes at once (there is no isolation: these are test adapters).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Generic, TypeVar
from uuid import UUID

from application.jobs import JobService
from application.unit_of_work import Transaction

V = TypeVar("V")

Undo = Callable[[], None]
_journal: ContextVar[list[Undo] | None] = ContextVar("memory_journal", default=None)


class MemoryTable(Generic[V]):
    """Rows by id; writes inside a transaction can be undone."""

    def __init__(self) -> None:
        self._rows: dict[UUID, V] = {}

    def put(self, row_id: UUID, row: V) -> None:
        journal = _journal.get()
        if journal is not None:
            journal.append(self._restorer(row_id))
        self._rows[row_id] = row

    def get(self, row_id: UUID) -> V | None:
        return self._rows.get(row_id)

    def __iter__(self) -> Iterator[V]:
        return iter(list(self._rows.values()))

    def _restorer(self, row_id: UUID) -> Undo:
        if row_id in self._rows:
            previous = self._rows[row_id]

            def restore() -> None:
                self._rows[row_id] = previous
        else:

            def restore() -> None:
                self._rows.pop(row_id, None)

        return restore


class MemoryTransaction:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    @property
    def jobs(self) -> JobService:
        return self._jobs


class InMemoryUnitOfWork:
    """Transactions over the in-memory repositories: a rollback undoes their writes.

    Jobs do not join: `tx.jobs` is the job port itself, so jobs are created at once and a
    rollback leaves them (the memory job backend has no transaction to share).
    """

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Transaction]:
        if _journal.get() is not None:
            raise RuntimeError("a business transaction is already open in this task")
        journal: list[Undo] = []
        token = _journal.set(journal)
        try:
            yield MemoryTransaction(self._jobs)
        except BaseException:
            for undo in reversed(journal):
                undo()
            raise
        finally:
            _journal.reset(token)
