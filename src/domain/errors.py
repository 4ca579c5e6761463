"""Errors the domain raises. Each kind carries the status and the problem type a caller
sees (the API answers with them as problem details, in one place: `host.api.problems`).

DomainError                              400 domain-error
├── InvalidValue (ValueError)            422 invalid-value
├── NotFound (LookupError, jobs.DoNotRetry: a job about a record that is gone fails at once)
│   │                                    404 not-found
│   ├── users.UserNotFound               404 user-not-found
│   ├── users.PasswordResetNotFound      404 password-reset-not-found
│   ├── invoices.InvoiceNotFound         404 invoice-not-found
│   └── reports.ReportNotFound           404 report-not-found
├── Conflict                             409 conflict
│   ├── users.EmailAlreadyRegistered (ValueError)  409 email-already-registered
│   └── reports.ReportNotGenerated       409 report-not-generated
"""

from __future__ import annotations

from uuid import UUID

from domain.jobs import DoNotRetry


class DomainError(Exception):
    """Root of every error the domain raises.

    Attributes:
        status: the HTTP status that says what kind of failure this is.
        type: a short, stable, kebab-case name of the error (a problem type).
    """

    status = 400
    type = "domain-error"


class InvalidValue(DomainError, ValueError):
    """A value breaks a rule of the domain (a malformed address, an empty period)."""

    status = 422
    type = "invalid-value"


class Conflict(DomainError):
    """The request contradicts what is stored (a duplicate, a step out of order)."""

    status = 409
    type = "conflict"


class NotFound(DomainError, LookupError, DoNotRetry):
    """No record of this kind has the id. A job that meets it is not retried: the record
    will not come back."""

    status = 404
    type = "not-found"
    kind = "record"

    def __init__(self, record_id: UUID) -> None:
        super().__init__(f"no {self.kind} {record_id}")
        self.record_id = record_id
