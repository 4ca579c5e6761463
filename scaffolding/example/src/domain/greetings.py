"""An example of your own business: a greeting sent in the background, and a daily count of
the greetings sent. Replace it with yours (docs/new-service.md): entities and the ports they
need here, the handlers' registration in `host/catalog.py`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from domain.clock import Clock
from domain.jobs import JobContext


@dataclass(frozen=True, slots=True)
class Greeting:
    name: str
    sent_at: dt.datetime


class GreetingLog(Protocol):
    """Where sent greetings are kept (a domain port; its adapter lives in infrastructure)."""

    def add(self, greeting: Greeting) -> None: ...

    def sent_since(self, since: dt.datetime) -> list[Greeting]: ...


class GreetingJobs:
    """The handlers: plain methods the job engine runs, built with their ports for each run."""

    def __init__(self, log: GreetingLog, clock: Clock, context: JobContext) -> None:
        self._log = log
        self._clock = clock
        self._context = context

    def send(self, name: str) -> str:
        if not name.strip():
            raise ValueError("name must not be blank")
        self._log.add(Greeting(name=name, sent_at=self._clock.now()))
        self._context.logger.info("greeted %s", name)
        return f"Hello, {name}!"

    def count_daily(self) -> int:
        """The recurring job: how many greetings went out over the last day."""
        sent = len(self._log.sent_since(self._clock.now() - dt.timedelta(days=1)))
        self._context.logger.info("%d greeting(s) in the last 24 hours", sent)
        return sent
