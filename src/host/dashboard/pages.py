"""The dashboard's pages (GET): overview, jobs by state, a job, recurring jobs, batches,
servers, retries; and the event stream that keeps the overview and a job's page live."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from application.jobs import (
    BatchId,
    BatchView,
    InvalidQuery,
    JobFilter,
    JobId,
    JobNotFound,
    JobSort,
    JobState,
    JobView,
    MinuteCount,
    RecurringView,
)
from host.api.inputs import NO_NUL
from host.dashboard import filters, views
from host.dashboard.live import Snapshot
from host.dashboard.security import DashboardError
from host.dashboard.sessions import Viewer
from host.dashboard.site import Dashboard, Reader, Site
from host.job_details import without_details
from host.settings import Scope

PAGE_SIZE = 50
DAY = dt.timedelta(days=1)
OVERVIEW_PARTIALS = ("counts", "graph", "queues", "servers")

router = APIRouter()


@router.get("")
async def overview(
    request: Request, site: Site, viewer: Reader, period: Annotated[str, Query(alias="range")] = ""
) -> HTMLResponse:
    admin = site.container.admin()
    day = period == "day"
    stats = await admin.stats(DAY) if day else await site.feed.stats()
    snapshot = Snapshot(
        at=site.container.clock().now(),
        stats=stats,
        queues=await admin.queues(),
        servers=await admin.list_servers(),
    )
    bars = views.graph(_per_quarter_hour(stats.per_minute) if day else stats.per_minute)
    return site.page(
        request, "overview.html", viewer, snap=snapshot, bars=bars, day=day, live=not day
    )


@router.get("/list")
async def jobs_list(request: Request, site: Site, viewer: Reader) -> HTMLResponse:
    query, problems = filters.parse(_multi(request))
    page = None
    if not problems:
        try:
            page = await site.container.admin().list_jobs(
                query.to_filter(), sort=query.sort, limit=PAGE_SIZE, cursor=query.cursor
            )
        except InvalidQuery as exc:
            problems = [str(exc)]
    return site.page(
        request,
        "jobs.html",
        viewer,
        status=400 if problems else 200,
        query=query,
        page=page,
        problems=problems,
        states=list(JobState),
        sorts=list(JobSort),
        handlers=[h.name for h in site.container.admin().handlers()],
    )


@router.get("/job/{job_id}")
async def job_detail(request: Request, site: Site, viewer: Reader, job_id: str) -> HTMLResponse:
    job = _as_seen(site, viewer, await _job(site, job_id))
    admin = site.container.admin()
    # Independent reads, each on a connection of its own: they overlap.
    explanation, continuations, batch = await asyncio.gather(
        admin.explain(job.id),
        admin.list_jobs(JobFilter(parent_id=job.id), limit=PAGE_SIZE),
        _batch(site, job.batch_id),
    )
    return site.page(
        request,
        "job.html",
        viewer,
        job=job,
        explanation=explanation,
        continuations=continuations.items,
        batch=batch,
        steps=views.timeline(job, site.container.clock().now()),
        failures=views.failures(job),
        details_scope=_details_scope(site, viewer),
    )


@router.get("/recurring")
async def recurring(
    request: Request,
    site: Site,
    viewer: Reader,
    after: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> HTMLResponse:
    jobs, admin = site.container.jobs(), site.container.admin()
    items = await jobs.list_recurring(after=after, limit=PAGE_SIZE)
    # Fire times of rare schedules take long to find: computed off the event loop.
    fires = await asyncio.to_thread(lambda: [admin.next_fire_times(item, 5) for item in items])
    states = [await _last_state(site, item) for item in items]
    rows = list(zip(items, fires, states, strict=True))
    next_after = items[-1].id if len(items) == PAGE_SIZE else None
    return site.page(request, "recurring.html", viewer, rows=rows, next_after=next_after)


@router.get("/batches")
async def batches(request: Request, site: Site, viewer: Reader) -> HTMLResponse:
    found = await site.container.admin().list_batches(PAGE_SIZE)
    return site.page(request, "batches.html", viewer, batches=found)


@router.get("/servers")
async def servers(request: Request, site: Site, viewer: Reader) -> HTMLResponse:
    found = await site.container.admin().list_servers()
    return site.page(request, "servers.html", viewer, servers=found)


@router.get("/retries")
async def retries(
    request: Request, site: Site, viewer: Reader, cursor: str | None = None
) -> HTMLResponse:
    where = JobFilter(retries=True)
    try:
        page = await site.container.admin().list_jobs(
            where, sort=JobSort.NEWEST, limit=PAGE_SIZE, cursor=cursor
        )
    except InvalidQuery as exc:
        raise DashboardError(400, str(exc)) from None
    return site.page(request, "retries.html", viewer, page=page)


@router.get("/events")
async def events(
    request: Request, site: Site, viewer: Reader, job: str | None = None
) -> StreamingResponse:
    """Server-sent events: the overview's parts, or (with `job`) one job's live part."""
    job_id = None if job is None else (await _job(site, job)).id
    render = (
        (lambda s: _job_events(site, viewer, job_id, s)) if job_id else lambda s: _overview(site, s)
    )
    return StreamingResponse(
        site.feed.stream(job_id, render),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


def _overview(site: Dashboard, snapshot: Snapshot) -> Iterable[tuple[str, str]]:
    if snapshot.stats is None:
        return
    bars = views.graph(snapshot.stats.per_minute)
    for name in OVERVIEW_PARTIALS:
        yield name, site.fragment(f"partials/{name}.html", snap=snapshot, bars=bars)


def _job_events(
    site: Dashboard, viewer: Viewer, job_id: JobId, snapshot: Snapshot
) -> Iterable[tuple[str, str]]:
    detail = snapshot.jobs.get(job_id)
    if detail is None:
        return
    job = _as_seen(site, viewer, detail.view)
    yield (
        "job-live",
        site.fragment(
            "partials/job_live.html",
            job=job,
            explanation=detail.explanation,
            steps=views.timeline(job, snapshot.at),
            failures=views.failures(job),
            now=snapshot.at,
            details_scope=_details_scope(site, viewer),
        ),
    )


def _details_scope(site: Dashboard, viewer: Viewer) -> Scope | None:
    """The scope the viewer lacks to see a job's details (None: they see them)."""
    needed = site.container.settings().auth.details_scope
    return None if viewer.can(needed) else needed


def _as_seen(site: Dashboard, viewer: Viewer, job: JobView) -> JobView:
    return job if _details_scope(site, viewer) is None else without_details(job)


async def _job(site: Dashboard, job_id: str) -> JobView:
    try:
        return await site.container.jobs().get(JobId(UUID(job_id)))
    except (ValueError, JobNotFound):
        raise DashboardError(404, "No job has this id.") from None


async def _batch(site: Dashboard, batch_id: BatchId | None) -> BatchView | None:
    return None if batch_id is None else await site.container.jobs().get_batch(batch_id)


async def _last_state(site: Dashboard, item: RecurringView) -> JobState | None:
    if item.last_job_id is None:
        return None
    try:
        return (await site.container.jobs().get(item.last_job_id)).state
    except JobNotFound:  # purged by retention
        return None


def _multi(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _per_quarter_hour(minutes: list[MinuteCount]) -> list[MinuteCount]:
    """A day's minutes summed per 15 minutes, so the day's graph has 96 bars."""
    return [
        MinuteCount(
            minute=chunk[0].minute,
            succeeded=sum(m.succeeded for m in chunk),
            failed=sum(m.failed for m in chunk),
        )
        for chunk in (minutes[i : i + 15] for i in range(0, len(minutes), 15))
    ]
