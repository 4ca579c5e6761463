"""`Signal` and `Broadcast`: "something changed, look again", from any thread or event loop.

The job port may run on an event loop other than the workers' (the synchronous port runs it on
a loop thread of its own), so a write on one loop must wake waiters on another. An
`asyncio.Event` cannot do that: setting it from a foreign thread does not wake the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Signal:
    """Waiters on any loop return when `notify` is called (from any thread) or on timeout.

    A notification with nobody waiting is kept for the next `wait`, so a change made between
    two waits is not missed; one `wait` consumes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify(self) -> None:
        with self._lock:
            self._pending = True
            waiters = list(self._waiters)
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, max_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._lock:
            if self._pending:
                self._pending = False
                return
            self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, max_seconds)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
                self._pending = False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Broadcast:
    """Wakes every waiter, on any loop, when `notify` is called from any thread.

    A waiter remembers the `generation` it saw before it looked at the data, and waits for a
    later one: a change between its look and its wait is not missed, whoever else waits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            waiters = list(self._waiters)
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, seen: int, max_seconds: float) -> None:
        """Return once the generation is past `seen`, or after `max_seconds`."""
        loop = asyncio.get_running_loop()
        waiter = (loop, loop.create_future())
        with self._lock:
            if self.generation != seen:
                return
            self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter[1], max_seconds)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
