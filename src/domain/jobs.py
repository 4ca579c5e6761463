"""What a job handler may rely on while it runs.

A handler asks for a `JobContext` by declaring a constructor parameter annotated with it;
the job engine passes one in for each execution. Handlers never import the engine.
"""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID


class DoNotRetry(Exception):
    """Raised by a handler: the job fails at once, whatever its retry policy (the work can
    never succeed, e.g. its business record is gone). Subclass it, or raise it `from` the
    cause; the message is recorded as the job's error."""


class JobContext(Protocol):
    """The running job, as seen by its handler."""

    @property
    def job_id(self) -> UUID:
        """The id of the job being executed."""

    @property
    def attempt(self) -> int:
        """1 for the first execution, 2 for the first retry, and so on."""

    @property
    def cancelled(self) -> bool:
        """True once the job was deleted, timed out or the server is stopping.

        Sync handlers poll this between steps; async handlers are also cancelled.
        """

    @property
    def logger(self) -> logging.Logger:
        """A logger whose lines are stored with the job and shown in its history."""

    def report_progress(self, percent: float) -> None:
        """Record progress between 0 and 100 (stored with the job)."""
