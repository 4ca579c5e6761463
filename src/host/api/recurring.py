"""Routes of recurring jobs: define, read, remove, trigger, pause and resume."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from application.jobs import Cron, MisfirePolicy, RecurringJobNotFound, RecurringView
from host.api.deps import ADMIN, READ, WRITE, Admin, Jobs
from host.api.inputs import NO_NUL, IdempotencyKey
from host.api.jobs import check_storable
from host.api.problems import problem_responses
from host.api.schemas.recurring import (
    RecurringOut,
    RecurringPageOut,
    RecurringRequest,
    TriggeredOut,
)
from host.auth import AuthenticatedRoute

router = APIRouter(prefix="/api/recurring", tags=["recurring"], route_class=AuthenticatedRoute)

NEXT_FIRE_TIMES = 5
DEFAULT_PAGE = 100
MAX_PAGE = 500

RecurringIdPath = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=NO_NUL, description="The recurring job's id."),
]


def _out(admin: Admin, recurring: RecurringView) -> RecurringOut:
    return RecurringOut.of(recurring, admin.next_fire_times(recurring, NEXT_FIRE_TIMES))


@router.get("", dependencies=[READ], responses=problem_responses(422))
async def list_recurring(
    jobs: Jobs,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=NO_NUL, description="`next_cursor`."),
    ] = None,
) -> RecurringPageOut:
    """A page of recurring jobs, ordered by id, each with its next five fire times (pass the
    previous page's `next_cursor` as `cursor` for the next)."""
    page = await jobs.list_recurring(after=cursor, limit=limit)
    # Fire times of rare schedules take long to find: computed off the event loop.
    items = await asyncio.to_thread(lambda: [_out(admin, recurring) for recurring in page])
    return RecurringPageOut(items=items, next_cursor=page[-1].id if len(page) == limit else None)


@router.get("/{recurring_id}", dependencies=[READ], responses=problem_responses(404, 422))
async def get_recurring(recurring_id: RecurringIdPath, jobs: Jobs, admin: Admin) -> RecurringOut:
    """A recurring job, with its next five fire times."""
    return _out(admin, await jobs.get_recurring(recurring_id))


@router.put("/{recurring_id}", dependencies=[ADMIN], responses=problem_responses(400, 413, 422))
async def put_recurring(
    recurring_id: RecurringIdPath, body: RecurringRequest, admin: Admin
) -> RecurringOut:
    """Create or replace a recurring job. An unchanged schedule keeps its next fire time."""
    check_storable(body.args, body.kwargs)
    misfire = body.misfire.to_policy() if body.misfire is not None else MisfirePolicy()
    recurring = await admin.add_or_update_recurring(
        recurring_id,
        Cron(body.cron, body.timezone, misfire),
        body.handler,
        body.args,
        body.kwargs,
        queue=body.queue,
    )
    return _out(admin, recurring)


@router.delete(
    "/{recurring_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[ADMIN],
    responses=problem_responses(404, 422),
)
async def delete_recurring(recurring_id: RecurringIdPath, jobs: Jobs) -> None:
    """Remove a recurring job; the jobs it already created stay."""
    if not await jobs.remove_recurring(recurring_id):
        raise RecurringJobNotFound(f"no recurring job has the id {recurring_id!r}")


@router.post(
    "/{recurring_id}/trigger",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def trigger_recurring(
    recurring_id: RecurringIdPath,
    jobs: Jobs,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TriggeredOut:
    """Enqueue a job of the recurring job now, outside its schedule (also while paused).
    With an `Idempotency-Key`, a repeat returns the first trigger's job."""
    job_id = await jobs.options(idempotency_key=idempotency_key).trigger_recurring(recurring_id)
    response.headers["Location"] = request.app.url_path_for("get_job", job_id=str(job_id))
    return TriggeredOut(id=job_id)


@router.post(
    "/{recurring_id}/pause",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def pause_recurring(recurring_id: RecurringIdPath, jobs: Jobs) -> None:
    """Stop creating jobs on schedule until resumed."""
    await jobs.pause_recurring(recurring_id)


@router.post(
    "/{recurring_id}/resume",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def resume_recurring(recurring_id: RecurringIdPath, jobs: Jobs) -> None:
    """Schedule again from the next fire time after now; paused ticks are not caught up."""
    await jobs.resume_recurring(recurring_id)
