"""Handlers are called directly, with in-memory adapters and a fake clock."""

from __future__ import annotations

import datetime as dt

import pytest

from infrastructure.jobs.clock import FakeClock
from tests.unit.domain.fakes import RecordingContext

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def context() -> RecordingContext:
    return RecordingContext()
