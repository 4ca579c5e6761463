"""The event stream: what an open page receives, and that its cost does not grow with the
number of open pages (one shared read per interval, whatever the number of streams)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import sqlalchemy as sa

from host.dashboard.live import LiveFeed
from host.dashboard.site import Dashboard
from host.settings import Scope
from tests.dashboard.conftest import WAIT_SECONDS, enqueue, unique
from tests.dashboard.server import BASE, LiveServer
from tests.engine_loop import database_of

ROUNDS = 5


@contextmanager
def counting_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs meanwhile, from any thread."""
    seen: list[str] = []
    lock = threading.Lock()

    def count(*args: object) -> None:
        with lock:
            seen.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def read_events(client: httpx.Client, url: str, count: int) -> list[str]:
    """The names of the first `count` events of a stream."""
    names: list[str] = []
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            if len(names) == count:
                break
    return names


def test_overview_stream_sends_counts_graph_queues_and_servers(live: LiveServer) -> None:
    client, _ = live.signed_in(Scope.READ)

    names = read_events(client, f"{BASE}/events", 4)

    assert sorted(names) == ["counts", "graph", "queues", "servers"]


def test_job_stream_sends_the_jobs_live_part(live: LiveServer) -> None:
    job_id = enqueue(live, "HeartbeatJobs.beat", delay_seconds=3600, queue=unique("live"))
    client, _ = live.signed_in(Scope.READ)

    with client.stream("GET", f"{BASE}/events", params={"job": job_id}) as response:
        first = "".join(_until_blank_line(response.iter_lines()))

    assert first.startswith("event: job-live")
    assert 'data-testid="job-state">scheduled' in first and 'data-obstacle="scheduled"' in first


def _until_blank_line(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if not line:
            return
        yield line


def test_many_open_pages_cost_no_more_reads_than_one(live: LiveServer) -> None:
    # Given ten pages open on ten jobs and ten overviews
    feed = dashboard(live).feed
    queue = unique("pages")
    jobs = [enqueue(live, "HeartbeatJobs.beat", delay_seconds=3600, queue=queue) for _ in range(10)]
    params = [{"job": job_id} for job_id in jobs] + [{}] * 10
    with ExitStack() as stack:
        streams = [
            stack.enter_context(live.signed_in(Scope.READ)[0].stream("GET", url, params=p))
            for p, url in zip(params, [f"{BASE}/events"] * 20, strict=True)
        ]
        # every page is open and fed (a line iterator closes its stream when dropped)
        lines = [stream.iter_lines() for stream in streams]
        assert all(next(line).startswith("event: ") for line in lines)

        # When the feed reads a few rounds
        with counting_statements(database_of(live.container)) as statements:
            rounds = wait_for_rounds(feed, ROUNDS)

    # Then each round read the pulses of all ten jobs, and the counts, once (the worker
    # never reads the log table nor groups the jobs by state)
    pulses = [s for s in statements if s.startswith("SELECT") and "job_logs" in s]
    counts = [s for s in statements if s.startswith("SELECT") and "GROUP BY jobs.state" in s]
    assert rounds - 1 <= len(pulses) <= rounds + 1
    assert len(counts) <= rounds + 1  # refreshed in the background, at most once a round


def wait_for_rounds(feed: LiveFeed, count: int) -> int:
    """Wait until the feed has read `count` more rounds; return how many it read."""
    start = feed.reads
    deadline = time.monotonic() + WAIT_SECONDS
    while feed.reads - start < count:
        assert time.monotonic() < deadline, "the feed stopped reading"
        time.sleep(0.01)
    return feed.reads - start


def dashboard(live: LiveServer) -> Dashboard:
    found: Dashboard = live.app.state.dashboard
    return found
