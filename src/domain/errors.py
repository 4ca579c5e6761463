"""Errors the domain raises.

DomainError
├── NotFound (LookupError, jobs.DoNotRetry: a job about a record that is gone fails at once)
│   ├── users.UserNotFound
│   ├── users.PasswordResetNotFound
│   ├── invoices.InvoiceNotFound
│   └── reports.ReportNotFound
├── users.EmailAlreadyRegistered (ValueError)
└── reports.ReportNotGenerated
"""

from __future__ import annotations

from uuid import UUID

from domain.jobs import DoNotRetry


class DomainError(Exception):
    """Root of every error the domain raises."""


class NotFound(DomainError, LookupError, DoNotRetry):
    """No record of this kind has the id. A job that meets it is not retried: the record
    will not come back."""

    kind = "record"

    def __init__(self, record_id: UUID) -> None:
        super().__init__(f"no {self.kind} {record_id}")
        self.record_id = record_id
