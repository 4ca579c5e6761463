"""Handlers are called directly, with the in-memory adapters and a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import (
    InMemoryInvoiceRepository,
    InMemoryNotificationRepository,
    InMemoryPasswordResetRepository,
    InMemoryReportRepository,
    InMemorySubscriptionRepository,
    InMemoryUserRepository,
)
from tests.unit.domain.fakes import RecordingContext

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def context() -> RecordingContext:
    return RecordingContext()


@pytest.fixture
def email() -> LoggingEmailSender:
    return LoggingEmailSender()


@pytest.fixture
def users() -> InMemoryUserRepository:
    return InMemoryUserRepository()


@pytest.fixture
def resets() -> InMemoryPasswordResetRepository:
    return InMemoryPasswordResetRepository()


@pytest.fixture
def invoices() -> InMemoryInvoiceRepository:
    return InMemoryInvoiceRepository()


@pytest.fixture
def subscriptions() -> InMemorySubscriptionRepository:
    return InMemorySubscriptionRepository()


@pytest.fixture
def reports() -> InMemoryReportRepository:
    return InMemoryReportRepository()


@pytest.fixture
def notifications() -> InMemoryNotificationRepository:
    return InMemoryNotificationRepository()
