"""The dashboard's actions (POST, with the viewer's CSRF token): requeue and delete a job,
act in bulk on a selection or on a whole filter (after a confirmation that says how many),
trigger, pause, resume and remove a recurring job."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import TypeAdapter, ValidationError

from application.jobs import (
    BulkAction,
    BulkResult,
    InvalidTransition,
    JobFilter,
    JobId,
    JobNotFound,
    RecurringJobNotFound,
    SkippedJob,
)
from host.api.inputs import Name
from host.dashboard import filters
from host.dashboard.security import DashboardError
from host.dashboard.sessions import Viewer
from host.dashboard.site import Administrator, Dashboard, Site, Writer
from host.settings import Scope

T = TypeVar("T")
RECURRING_ID: TypeAdapter[str] = TypeAdapter(Name)
MAX_SELECTION = 500
SEE_OTHER = 303

router = APIRouter()


@router.post("/job/{job_id}/requeue")
async def requeue(site: Site, viewer: Writer, job_id: str) -> RedirectResponse:
    await _act(site, BulkAction.REQUEUE, _job_id(job_id))
    return _back(site, f"/job/{job_id}")


@router.post("/job/{job_id}/delete")
async def delete(site: Site, viewer: Writer, job_id: str) -> RedirectResponse:
    await _act(site, BulkAction.DELETE, _job_id(job_id))
    return _back(site, f"/job/{job_id}")


@router.post("/bulk")
async def bulk(
    request: Request,
    site: Site,
    viewer: Writer,
    action: Annotated[BulkAction, Form()],
    ids: Annotated[list[str], Form(max_length=MAX_SELECTION)] = [],  # noqa: B006 (FastAPI copies it)
    everything: Annotated[bool, Form()] = False,
    confirmed: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Act on the selected jobs, or with `everything` on every job the list's filter (in the
    query string) matches. Without `confirmed`, answer a page that says how many."""
    if everything:
        return await _bulk_by_filter(request, site, viewer, action, confirmed)
    selected = [_job_id(job_id) for job_id in ids]
    if not selected:
        raise DashboardError(400, "Select at least one job.")
    if not confirmed:
        return _confirm(request, site, viewer, action, len(selected), ids=ids)
    refusals = {job_id: await _act(site, action, job_id, strict=False) for job_id in selected}
    skipped = [
        SkippedJob(job_id=job_id, state=None, reason=reason)
        for job_id, reason in refusals.items()
        if reason is not None
    ]
    result = BulkResult(
        matched=len(refusals),
        changed=len(refusals) - len(skipped),
        skipped=len(skipped),
        skipped_jobs=tuple(skipped),
    )
    return site.page(request, "done.html", viewer, action=action, result=result)


async def _bulk_by_filter(
    request: Request, site: Site, viewer: Viewer, action: BulkAction, confirmed: bool
) -> HTMLResponse:
    # Like the API's bulk routes: a whole filter needs the admin scope and a criterion.
    if not viewer.can(Scope.ADMIN):
        raise DashboardError(403, "Acting on a whole filter needs the admin scope.")
    params = request.query_params
    query, problems = filters.parse({key: params.getlist(key) for key in params})
    where = query.to_filter()
    if problems or where == JobFilter():
        raise DashboardError(400, "Narrow the list with a filter first: " + "; ".join(problems))
    admin = site.container.admin()
    if not confirmed:
        count = await admin.count(where)
        return _confirm(request, site, viewer, action, count, query=query.link(cursor=None))
    result = await admin.apply(action, where)
    return site.page(request, "done.html", viewer, action=action, result=result)


def _confirm(
    request: Request,
    site: Dashboard,
    viewer: Viewer,
    action: BulkAction,
    count: int,
    *,
    ids: list[str] | None = None,
    query: str = "",
) -> HTMLResponse:
    return site.page(
        request, "confirm.html", viewer, action=action, count=count, ids=ids or [], query=query
    )


@router.post("/recurring/{recurring_id}/trigger")
async def trigger(site: Site, viewer: Writer, recurring_id: str) -> RedirectResponse:
    jobs = site.container.jobs()
    job_id = await _recurring(jobs.trigger_recurring(_recurring_id(recurring_id)))
    return _back(site, f"/job/{job_id}")


@router.post("/recurring/{recurring_id}/pause")
async def pause(site: Site, viewer: Writer, recurring_id: str) -> RedirectResponse:
    await _recurring(site.container.jobs().pause_recurring(_recurring_id(recurring_id)))
    return _back(site, "/recurring")


@router.post("/recurring/{recurring_id}/resume")
async def resume(site: Site, viewer: Writer, recurring_id: str) -> RedirectResponse:
    await _recurring(site.container.jobs().resume_recurring(_recurring_id(recurring_id)))
    return _back(site, "/recurring")


@router.post("/recurring/{recurring_id}/remove")
async def remove(site: Site, viewer: Administrator, recurring_id: str) -> RedirectResponse:
    if not await site.container.jobs().remove_recurring(_recurring_id(recurring_id)):
        raise DashboardError(404, "No recurring job has this id.")
    return _back(site, "/recurring")


async def _act(
    site: Dashboard, action: BulkAction, job_id: JobId, *, strict: bool = True
) -> str | None:
    """Delete or requeue one job; why not when its state forbids it (with `strict`, a 409)."""
    jobs = site.container.jobs()
    try:
        await (jobs.delete(job_id) if action is BulkAction.DELETE else jobs.requeue(job_id))
    except JobNotFound:
        raise DashboardError(404, "No job has this id.") from None
    except InvalidTransition as exc:
        if strict:
            raise DashboardError(409, str(exc)) from None
        return str(exc)
    return None


def _recurring_id(text: str) -> str:
    """A recurring id the store can look up (no NUL, no lone surrogates, not too long)."""
    try:
        return RECURRING_ID.validate_python(text)
    except ValidationError:
        raise DashboardError(404, "No recurring job has this id.") from None


async def _recurring(call: Awaitable[T]) -> T:
    try:
        return await call
    except RecurringJobNotFound:
        raise DashboardError(404, "No recurring job has this id.") from None


def _job_id(text: str) -> JobId:
    try:
        return JobId(UUID(text))
    except ValueError:
        raise DashboardError(404, "No job has this id.") from None


def _back(site: Dashboard, path: str) -> RedirectResponse:
    return RedirectResponse(site.base + path, status_code=SEE_OTHER)
