"""Errors the domain raises.

DomainError
├── NotFound (LookupError)
│   ├── users.UserNotFound
│   ├── users.PasswordResetNotFound
│   ├── invoices.InvoiceNotFound
│   └── reports.ReportNotFound
├── users.EmailAlreadyRegistered (ValueError)
└── reports.ReportNotGenerated
"""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """Root of every error the domain raises."""


class NotFound(DomainError, LookupError):
    """No record of this kind has the id."""

    kind = "record"

    def __init__(self, record_id: UUID) -> None:
        super().__init__(f"no {self.kind} {record_id}")
        self.record_id = record_id
