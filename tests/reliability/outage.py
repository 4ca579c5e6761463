"""What the database-outage scenarios (R6, R6b, R6c) share: a `serve` process's health, polled
all along, and a listener that counts the connection attempts made while the server is down."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class HealthLog:
    """Every poll of /health/live and /health/ready: (epoch seconds, live status, ready status),
    a status of 0 meaning no answer."""

    polls: list[tuple[float, int, int]] = field(default_factory=list)

    def live_failures(self) -> int:
        return sum(1 for _, live, _ in self.polls if live != 200)

    def first_ready(self, status: int, after: float) -> float | None:
        """Seconds from `after` to the first poll at or after it whose readiness was
        `status`."""
        for at, _, ready in self.polls:
            if at >= after and ready == status:
                return at - after
        return None


async def poll_health(port: int, log: HealthLog, stopping: asyncio.Event) -> None:
    """Poll the two health endpoints every 0.5 s until `stopping`."""
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not stopping.is_set():
            at = time.time()
            live, ready = await asyncio.gather(
                _status(client, f"{base}/health/live"), _status(client, f"{base}/health/ready")
            )
            log.polls.append((at, live, ready))
            await asyncio.sleep(0.5)


async def _status(client: httpx.AsyncClient, url: str) -> int:
    try:
        return (await client.get(url)).status_code
    except httpx.HTTPError:
        return 0


class AttemptCounter:
    """Listens on the database's port while the server is down: accepts each connection
    attempt, counts it and closes it at once (the client sees the server gone)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.attempts = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> AttemptCounter:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        writer.close()
