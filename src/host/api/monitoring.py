"""Routes that watch the service: batches, servers and statistics."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from application.jobs import BatchId
from host.api.deps import READ, Admin, Jobs
from host.api.problems import problem_responses
from host.api.schemas.monitoring import BatchOut, ServerOut, StatsOut

router = APIRouter(prefix="/api", tags=["monitoring"], dependencies=[READ])


@router.get("/batches/{batch_id}", responses=problem_responses(404, 422))
async def get_batch(
    batch_id: Annotated[UUID, Path(description="The batch's id.")], jobs: Jobs
) -> BatchOut:
    """A batch's progress: its jobs by state, the share finished, its continuation."""
    return BatchOut.of(await jobs.get_batch(BatchId(batch_id)))


@router.get("/servers", responses=problem_responses())
async def list_servers(admin: Admin) -> list[ServerOut]:
    """The live worker processes, ordered by id."""
    return [ServerOut.of(server) for server in await admin.list_servers()]


@router.get("/stats", responses=problem_responses())
async def stats(admin: Admin) -> StatsOut:
    """Jobs by state, and jobs succeeded and failed per minute over the last hour."""
    return StatsOut.of(await admin.stats())
