"""Logging is configured here and nowhere else.

The code logs with stdlib `logging` and `extra={...}`; every record (ours, uvicorn's,
SQLAlchemy's, alembic's) goes through one structlog `ProcessorFormatter`, which adds the
context bound in contextvars (`request_id`, `job_id`, ...) and the current `trace_id`, and
renders JSON lines or readable console lines.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

# Loggers that may have handlers of their own (uvicorn's when it configures logging itself):
# they are emptied so that their records reach the root handler, once.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "alembic")


def configure_logging(level: str, fmt: str = "auto", *, stream: TextIO | None = None) -> None:
    """Route every log of the process to `stream` (stderr) at `level`, as `fmt`: `json`
    lines, `console`, or `auto` (console on a terminal, JSON otherwise)."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(as_json, colors=stream.isatty()),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    for chatty in ("pika",):  # a line per connection step at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        add_trace_id,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderers(as_json: bool, *, colors: bool) -> list[Processor]:
    if as_json:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # The console renderer formats exceptions itself (and warns if they come pre-formatted);
    # never with local variables, which may hold secrets.
    tracebacks = (
        structlog.dev.RichTracebackFormatter(show_locals=False)
        if colors
        else structlog.dev.plain_traceback
    )
    return [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=tracebacks)]


def _drop_color_message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """uvicorn repeats its message with ANSI colours in `extra`; one copy is enough."""
    event.pop("color_message", None)
    return event


def add_trace_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The current span's trace id (hex), so that logs and traces join."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = trace.format_trace_id(span_context.trace_id)
    return event
