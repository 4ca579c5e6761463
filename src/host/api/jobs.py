"""Routes of handlers and jobs: create, read, list, delete, requeue, and act in bulk."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status

from application.jobs import (
    BulkAction,
    InvalidArguments,
    JobFilter,
    JobId,
    JobNotFound,
    JobSort,
    JobState,
    JSONValue,
)
from host.api.deps import ADMIN, READ, WRITE, Admin, Jobs, Now, SeesDetails
from host.api.inputs import IdempotencyKey, Instant, Name, QueueName, unstorable_argument
from host.api.problems import problem_responses
from host.api.schemas.jobs import (
    EnqueueRequest,
    ExplanationOut,
    HandlerOut,
    JobCreated,
    JobOut,
)
from host.api.schemas.listing import BulkResultOut, JobFilterBody, JobPageOut, JobSummaryOut
from host.auth import AuthenticatedRoute
from host.job_details import without_details

router = APIRouter(prefix="/api", tags=["jobs"], route_class=AuthenticatedRoute)

JobIdPath = Annotated[UUID, Path(description="The job's id.")]


@router.get(
    "/handlers",
    tags=["handlers"],
    dependencies=[READ],
    responses=problem_responses(),
)
async def list_handlers(admin: Admin) -> list[HandlerOut]:
    """The registered handlers (the only ones that can be enqueued), with the JSON schema of
    their arguments."""
    return [HandlerOut.of(info) for info in admin.handlers()]


@router.post(
    "/jobs",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WRITE],
    responses=problem_responses(400, 413, 422),
)
async def enqueue(
    body: EnqueueRequest,
    request: Request,
    response: Response,
    admin: Admin,
    jobs: Jobs,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    """Create a job of a registered handler: now, after `delay_seconds`, at `run_at`, or
    once the job `continue_after` has succeeded. Arguments are checked against the handler's
    signature; a bad one is named in the problem's `argument`. With an `Idempotency-Key`,
    a repeat gets the same status and body (the job's id and the state it was created in);
    the time fields are not compared."""
    check_storable(body.args, body.kwargs)
    run_at = body.run_at
    if body.delay_seconds is not None:
        run_at = now.now() + dt.timedelta(seconds=body.delay_seconds)
    parent = None if body.continue_after is None else JobId(body.continue_after)
    try:
        job_id = await admin.enqueue(
            body.handler,
            body.args,
            body.kwargs,
            queue=body.queue,
            run_at=run_at,
            unique_key=body.unique_key,
            continue_after=parent,
            idempotency_key=idempotency_key,
        )
    except JobNotFound as exc:
        raise InvalidArguments(f"continue_after: {exc}", argument="continue_after") from None
    job = await jobs.get(job_id)
    response.headers["Location"] = request.app.url_path_for("get_job", job_id=str(job_id))
    # A repeat of an idempotent request answers as the first did: with the state it began in.
    state = job.history[0].state if idempotency_key is not None else job.state
    return JobCreated(id=job.id, state=state)


@router.get("/jobs/{job_id}", dependencies=[READ], responses=problem_responses(404, 422))
async def get_job(job_id: JobIdPath, jobs: Jobs, details: SeesDetails) -> JobOut:
    """A job: its state and history, attempts, last error, progress, log lines and result.
    Tracebacks, log lines and the result need `APP_AUTH__DETAILS_SCOPE` (write by default);
    without it they are left out and `details_hidden` is true."""
    job = await jobs.get(JobId(job_id))
    if details:
        return JobOut.of(job)
    return JobOut.of(without_details(job), details_hidden=True)


@router.get(
    "/jobs/{job_id}/explanation", dependencies=[READ], responses=problem_responses(404, 422)
)
async def explain_job(job_id: JobIdPath, admin: Admin) -> ExplanationOut:
    """Why the job is not running, in plain words with the facts behind them: its schedule or
    retry, the parent or batch it awaits, its queue without a live server or with every worker
    slot busy (and how many jobs are ahead), its paused recurring job, or how it finished."""
    return ExplanationOut.of(await admin.explain(JobId(job_id)))


@router.get("/jobs", dependencies=[READ], responses=problem_responses(422))
async def list_jobs(
    admin: Admin,
    state: Annotated[
        list[JobState], Query(default_factory=list, description="Any of these states.")
    ],
    queue: Annotated[QueueName | None, Query()] = None,
    handler: Annotated[Name | None, Query()] = None,
    text: Annotated[Name | None, Query(description="Substring of the arguments' JSON.")] = None,
    created_from: Annotated[Instant | None, Query(description="Inclusive.")] = None,
    created_to: Annotated[Instant | None, Query(description="Exclusive.")] = None,
    recurring_id: Annotated[Name | None, Query()] = None,
    sort: JobSort = JobSort.NEWEST,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor`.")] = None,
) -> JobPageOut:
    """A page of jobs matching every given filter, in `sort` order (keyset pagination: pass
    the previous page's `next_cursor` as `cursor`, with the same filters and sort)."""
    where = JobFilter(
        states=frozenset(state),
        queue=queue,
        handler=handler,
        text=text,
        created_from=created_from,
        created_to=created_to,
        recurring_id=recurring_id,
    )
    page = await admin.list_jobs(where, sort=sort, limit=limit, cursor=cursor)
    return JobPageOut(
        items=[JobSummaryOut.of(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.delete(
    "/jobs/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WRITE],
    responses=problem_responses(404, 422),
)
async def delete_job(job_id: JobIdPath, jobs: Jobs) -> None:
    """Move a job to `deleted` (a running one is cancelled); deleting it again does nothing."""
    await jobs.delete(JobId(job_id))


@router.post(
    "/jobs/{job_id}/requeue",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WRITE],
    responses=problem_responses(404, 409, 422),
)
async def requeue_job(job_id: JobIdPath, jobs: Jobs) -> None:
    """Enqueue a job again now, whatever its state; 409 while it is processing."""
    await jobs.requeue(JobId(job_id))


@router.post(
    "/jobs/bulk-delete",
    dependencies=[ADMIN],
    responses=problem_responses(400, 413, 422),
)
async def bulk_delete(where: JobFilterBody, admin: Admin) -> BulkResultOut:
    """Delete every job that matches the filter (at least one criterion)."""
    return await _bulk(admin, BulkAction.DELETE, where)


@router.post(
    "/jobs/bulk-requeue",
    dependencies=[ADMIN],
    responses=problem_responses(400, 413, 422),
)
async def bulk_requeue(where: JobFilterBody, admin: Admin) -> BulkResultOut:
    """Requeue every job that matches the filter (at least one criterion); processing jobs
    are skipped."""
    return await _bulk(admin, BulkAction.REQUEUE, where)


async def _bulk(admin: Admin, action: BulkAction, where: JobFilterBody) -> BulkResultOut:
    result = await admin.apply(action, where.to_filter())
    return BulkResultOut.of(result)


def check_storable(args: list[JSONValue], kwargs: dict[str, JSONValue]) -> None:
    """Raises InvalidArguments naming the first argument whose JSON cannot be stored."""
    name = unstorable_argument(args, kwargs)
    if name is not None:
        raise InvalidArguments(
            f"argument {name!r} cannot be stored: it nests too deeply, holds a non-finite "
            "number, or a string with NUL characters or lone surrogates",
            argument=name,
        )
