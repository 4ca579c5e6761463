"""Prometheus metrics at /metrics: the engine's counters and histograms (recorded as jobs are
created and run), plus gauges read from the store at scrape time."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from application.jobs import JobState
from host.auth import require
from host.container import Container
from host.settings import Scope, Settings

logger = logging.getLogger(__name__)

JOBS_IN_STATE = Gauge("jobs_in_state", "Jobs per state in the store.", ["state"])
HEARTBEAT_AGE = Gauge(
    "server_heartbeat_age_seconds", "Seconds since each live server's last heartbeat.", ["server"]
)


@dataclass(slots=True)
class StoreSample:
    """What the store said at the last refresh, reused for `max_age` seconds so that frequent
    scrapes (or several scrapers) do not each count every job."""

    max_age: float
    taken_at: float | None = None
    counts: dict[JobState, int] = field(default_factory=dict)
    heartbeats: dict[str, float] = field(default_factory=dict)
    """Server id -> heartbeat time (POSIX seconds)."""

    async def refresh(self, container: Container) -> None:
        if self.taken_at is not None and time.monotonic() - self.taken_at < self.max_age:
            return
        self.counts = await container.admin().count_by_state()
        servers = await container.admin().list_servers()
        self.heartbeats = {s.id: s.heartbeat_at.timestamp() for s in servers}
        self.taken_at = time.monotonic()

    def publish(self, now: float) -> None:
        if self.taken_at is None:
            return  # never read: no gauge rather than a wrong zero
        for state in JobState:
            JOBS_IN_STATE.labels(state.value).set(self.counts.get(state, 0))
        HEARTBEAT_AGE.clear()  # servers that left must not linger
        for server, heartbeat_at in self.heartbeats.items():
            HEARTBEAT_AGE.labels(server).set(max(0.0, now - heartbeat_at))


def router(settings: Settings) -> APIRouter:
    """The /metrics route; it needs the `read` scope unless `metrics.public` is set."""
    needs = [] if settings.metrics.public else [Depends(require(Scope.READ))]
    routes = APIRouter(dependencies=needs)
    sample = StoreSample(max_age=settings.metrics.state_cache_seconds)

    @routes.get("/metrics", tags=["metrics"], response_class=Response)
    async def scrape(request: Request) -> Response:
        """Prometheus exposition of the service's metrics."""
        container: Container = request.app.state.container
        try:
            await sample.refresh(container)
        except Exception:
            # the counters and histograms are still worth serving; the gauges keep old values
            logger.warning("reading job counts for /metrics failed", exc_info=True)
        sample.publish(container.clock().now().timestamp())
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return routes
