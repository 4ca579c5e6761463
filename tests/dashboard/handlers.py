"""Handlers the dashboard tests run besides the service's own: they log what they are given
(markup included), fail on demand, and wait at a gate the test opens."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

from application.jobs import JobContext, RetryPolicy
from host.container import build_registry
from host.features import FEATURES
from host.settings import Settings
from infrastructure.jobs.handlers import HandlerRegistry

GATE_LIMIT_SECONDS = 30.0
GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
"""Opened by the tests (another thread than the server's loop)."""


class Probe:
    def __init__(self, context: JobContext) -> None:
        self.context = context

    async def say(self, text: str) -> str:
        self.context.logger.info("said %s", text)
        return text

    async def fail(self, text: str) -> None:
        self.context.logger.error("about to fail: %s", text)
        raise ValueError(text)

    async def retry(self, text: str) -> None:
        raise RuntimeError(text)

    async def wait(self, gate: str) -> str:
        self.context.logger.info("waiting at gate %s", gate)
        self.context.report_progress(10)
        if not await asyncio.to_thread(GATES[gate].wait, GATE_LIMIT_SECONDS):
            raise TimeoutError(f"gate {gate} stayed shut")
        self.context.report_progress(100)
        self.context.logger.warning("<script>alert('%s')</script> passed the gate", gate)
        return gate


def registry() -> HandlerRegistry:
    """The service's handlers and the probes (each runs once; a retrying one twice)."""
    found = build_registry(Settings(), FEATURES)
    found.register(Probe.say, retry=RetryPolicy.none())
    found.register(Probe.fail, retry=RetryPolicy.none())
    found.register(Probe.wait, retry=RetryPolicy.none())
    found.register(Probe.retry, retry=RetryPolicy(attempts=3, delays=(600,)))
    return found
