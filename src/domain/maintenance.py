"""Housekeeping jobs: removing stale temporary files, and a heartbeat that shows the
scheduler and workers are alive."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from domain.clock import Clock
from domain.jobs import JobContext


@dataclass(frozen=True, slots=True, kw_only=True)
class TempFileSettings:
    """Where the service keeps temporary files."""

    directory: Path


class TempFileJobs:
    """Deletes temporary files nobody touched for a while.

    Runs synchronously (in a worker thread): it does blocking file I/O and checks for
    cancellation between files.
    """

    def __init__(self, settings: TempFileSettings, clock: Clock, context: JobContext) -> None:
        self._directory = settings.directory
        self._clock = clock
        self._context = context

    def cleanup(self, older_than_hours: float = 24.0) -> int:
        """Delete the files directly in the directory last modified more than
        `older_than_hours` ago; subdirectories and symbolic links are left alone, and a
        missing directory has nothing to clean. Returns how many files were deleted."""
        if older_than_hours < 0:
            raise ValueError("older_than_hours must not be negative")
        cutoff = self._clock.now() - dt.timedelta(hours=older_than_hours)
        candidates = self._files()
        deleted = 0
        for done, path in enumerate(candidates, start=1):
            if self._context.cancelled:
                break
            deleted += _delete_if_older(path, cutoff)
            self._context.report_progress(100 * done / len(candidates))
        self._context.logger.info(
            "deleted %d of %d file(s) older than %s in %s",
            deleted,
            len(candidates),
            cutoff.isoformat(),
            self._directory,
        )
        return deleted

    def _files(self) -> list[Path]:
        if not self._directory.is_dir():
            return []
        return sorted(
            path for path in self._directory.iterdir() if path.is_file() and not path.is_symlink()
        )


def _delete_if_older(path: Path, cutoff: dt.datetime) -> bool:
    try:
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        if modified >= cutoff:
            return False
        path.unlink()
    except FileNotFoundError:
        return False  # removed meanwhile, by another run of this job for instance
    return True


class HeartbeatJobs:
    """A sign of life: one log line per run, stored with the job."""

    def __init__(self, clock: Clock, context: JobContext) -> None:
        self._clock = clock
        self._context = context

    def beat(self) -> str:
        """Log that the service is alive; returns the time it saw."""
        now = self._clock.now().isoformat()
        self._context.logger.info("heartbeat at %s (attempt %d)", now, self._context.attempt)
        return now
