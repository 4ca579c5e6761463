"""A `JobContext` for calling handlers directly, outside the engine, that records what the
handler reported."""

from __future__ import annotations

import logging
from uuid import UUID, uuid4


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class RecordingContext:
    """Satisfies `domain.jobs.JobContext`; `cancel()` makes `cancelled` true."""

    def __init__(self, job_id: UUID | None = None, attempt: int = 1) -> None:
        self._job_id = job_id or uuid4()
        self._attempt = attempt
        self._cancelled = False
        self._lines = _Lines()
        self.logger = logging.Logger(f"test-job-{self._job_id}", logging.DEBUG)
        self.logger.addHandler(self._lines)
        self.progress: list[float] = []

    @property
    def job_id(self) -> UUID:
        return self._job_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def report_progress(self, percent: float) -> None:
        self.progress.append(percent)

    @property
    def log_lines(self) -> list[str]:
        return self._lines.lines
