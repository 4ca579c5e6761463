"""Use cases: the commands the service accepts, each starting background work through the
job port."""

from application.use_cases.invoices import ScheduleInvoiceReminder
from application.use_cases.notifications import BulkNotificationSent, SendBulkNotification
from application.use_cases.reports import ReportRequested, RequestReport
from application.use_cases.users import (
    ForgotPassword,
    PasswordResetRequested,
    RegisterUser,
    Registration,
)

__all__ = [
    "BulkNotificationSent",
    "ForgotPassword",
    "PasswordResetRequested",
    "RegisterUser",
    "Registration",
    "ReportRequested",
    "RequestReport",
    "ScheduleInvoiceReminder",
    "SendBulkNotification",
]
