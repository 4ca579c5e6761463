"""Errors raised by the job port.

JobsError
├── JobNotFound (LookupError)
├── RecurringJobNotFound (LookupError)
├── BatchNotFound (LookupError)
├── HandlerNotRegistered (LookupError)
├── InvalidArguments (TypeError)
├── PayloadTooLarge (ValueError)
├── InvalidSchedule (ValueError)
├── InvalidTransition
│   └── UniqueKeyHeld
├── InvalidQuery (ValueError)
├── IdempotencyKeyReused (ValueError)
└── WaitTimedOut (TimeoutError)
"""

from __future__ import annotations

from uuid import UUID


class JobsError(Exception):
    """Root of every error the job port raises."""


class JobNotFound(JobsError, LookupError):
    """No job has this id."""


class RecurringJobNotFound(JobsError, LookupError):
    """No recurring job has this id."""


class BatchNotFound(JobsError, LookupError):
    """No batch has this id."""


class HandlerNotRegistered(JobsError, LookupError):
    """The handler is not on the allow-list of registered handlers."""


class InvalidArguments(JobsError, TypeError):
    """The arguments do not fit the handler's signature or cannot be stored as JSON.

    `argument` names the offending argument when there is one.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class PayloadTooLarge(JobsError, ValueError):
    """The serialised arguments exceed the configured size limit."""

    def __init__(self, message: str, *, argument: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.argument = argument
        self.size = size
        self.limit = limit


class InvalidSchedule(JobsError, ValueError):
    """A naive datetime, a malformed cron expression or an unknown time zone."""


class InvalidTransition(JobsError):
    """The job's current state does not allow the requested change."""


class UniqueKeyHeld(InvalidTransition):
    """The job would become active, but another active job holds its unique key.

    `holder` is that job's id when known (None: it was taken meanwhile by a job not yet seen).
    """

    def __init__(self, message: str, *, key: str, holder: UUID | None) -> None:
        super().__init__(message)
        self.key = key
        self.holder = holder


class InvalidQuery(JobsError, ValueError):
    """A list query the store cannot run: a malformed cursor, or one of another sort order."""


class IdempotencyKeyReused(JobsError, ValueError):
    """An idempotency key came back with another request (handler, arguments, queue, unique
    key or parent) than the one it was first used with."""


class WaitTimedOut(JobsError, TimeoutError):
    """The job did not reach a final state within the time the caller waited."""
