from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from domain.maintenance import HeartbeatJobs, TempFileJobs, TempFileSettings
from infrastructure.jobs.clock import FakeClock
from tests.unit.domain.fakes import RecordingContext


def touch(path: Path, modified: dt.datetime) -> Path:
    path.write_text("data")
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


@pytest.fixture
def jobs(tmp_path: Path, clock: FakeClock, context: RecordingContext) -> TempFileJobs:
    return TempFileJobs(TempFileSettings(directory=tmp_path), clock, context)


def test_cleanup_deletes_only_files_older_than_the_limit(
    jobs: TempFileJobs, tmp_path: Path, clock: FakeClock, context: RecordingContext
) -> None:
    # Given files modified 30 h, 25 h and 23 h ago, and an old subdirectory with a file
    now = clock.now()
    stale = touch(tmp_path / "stale.tmp", now - dt.timedelta(hours=30))
    old = touch(tmp_path / "old.tmp", now - dt.timedelta(hours=25))
    fresh = touch(tmp_path / "fresh.tmp", now - dt.timedelta(hours=23))
    (tmp_path / "keep").mkdir()
    nested = touch(tmp_path / "keep" / "nested.tmp", now - dt.timedelta(hours=48))

    # When files older than 24 h are cleaned up
    deleted = jobs.cleanup(older_than_hours=24)

    # Then only the two old files at the top level are gone
    assert deleted == 2
    assert not stale.exists() and not old.exists()
    assert fresh.exists() and nested.exists()
    assert context.progress[-1] == 100
    assert context.log_lines[-1].startswith("deleted 2 of 3 file(s) older than")


def test_cleanup_of_a_missing_directory_deletes_nothing(
    tmp_path: Path, clock: FakeClock, context: RecordingContext
) -> None:
    jobs = TempFileJobs(TempFileSettings(directory=tmp_path / "absent"), clock, context)

    assert jobs.cleanup() == 0


def test_cleanup_stops_when_the_job_is_cancelled(
    jobs: TempFileJobs, tmp_path: Path, clock: FakeClock, context: RecordingContext
) -> None:
    old = touch(tmp_path / "old.tmp", clock.now() - dt.timedelta(days=3))
    context.cancel()

    assert jobs.cleanup() == 0
    assert old.exists()


def test_cleanup_refuses_a_negative_age(jobs: TempFileJobs) -> None:
    with pytest.raises(ValueError, match="negative"):
        jobs.cleanup(older_than_hours=-1)


def test_heartbeat_logs_a_line_with_the_time(clock: FakeClock, context: RecordingContext) -> None:
    seen = HeartbeatJobs(clock, context).beat()

    assert seen == clock.now().isoformat()
    assert context.log_lines == [f"heartbeat at {seen} (attempt 1)"]
