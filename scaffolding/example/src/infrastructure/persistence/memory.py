"""In-memory adapters of the domain ports (replace them with your database's)."""

from __future__ import annotations

import datetime as dt
import threading

from domain.greetings import Greeting


class InMemoryGreetingLog:
    def __init__(self) -> None:
        self._greetings: list[Greeting] = []
        self._lock = threading.Lock()  # sync handlers run on worker threads

    def add(self, greeting: Greeting) -> None:
        with self._lock:
            self._greetings.append(greeting)

    def sent_since(self, since: dt.datetime) -> list[Greeting]:
        with self._lock:
            return [greeting for greeting in self._greetings if greeting.sent_at >= since]
