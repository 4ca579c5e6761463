"""A job's details as its viewer may see them.

Tracebacks, log lines and results are what a handler wrote, and can quote what it handled
(rows, addresses, tokens): they need the scope `APP_AUTH__DETAILS_SCOPE` (write by default),
so read-scope callers (monitoring, a read-only dashboard) see states, times and error types
without them.
"""

from __future__ import annotations

from dataclasses import replace

from application.jobs import JobView, Transition

DETAIL_KEYS = frozenset({"traceback", "result", "logs"})
"""Keys of a transition's data that hold details."""


def without_details(job: JobView) -> JobView:
    """`job` without its tracebacks, log lines and result."""
    return replace(
        job,
        error=None if job.error is None else replace(job.error, traceback=""),
        logs=(),
        result=None,
        history=tuple(_plain(transition) for transition in job.history),
    )


def _plain(transition: Transition) -> Transition:
    if not DETAIL_KEYS & transition.data.keys():
        return transition
    data = {key: value for key, value in transition.data.items() if key not in DETAIL_KEYS}
    return replace(transition, data=data)
