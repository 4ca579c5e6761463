"""Typed dependencies of the API's routes: the ports, the clock, and the scopes they need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from application.jobs import JobAdmin, JobService
from host.auth import Principal
from host.container import Container
from host.scopes import ADMIN, READ, WRITE, declared_scope
from infrastructure.jobs.clock import Clock


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def job_service(request: Request) -> JobService:
    jobs: JobService = container_of(request).jobs()
    return jobs


def job_admin(request: Request) -> JobAdmin:
    admin: JobAdmin = container_of(request).admin()
    return admin


def clock(request: Request) -> Clock:
    now: Clock = container_of(request).clock()
    return now


Jobs = Annotated[JobService, Depends(job_service)]
Admin = Annotated[JobAdmin, Depends(job_admin)]
Now = Annotated[Clock, Depends(clock)]


def sees_details(request: Request, caller: Annotated[Principal, READ]) -> bool:
    """Whether the caller's scope shows a job's tracebacks, log lines and result."""
    return caller.allows(container_of(request).settings().auth.details_scope)


SeesDetails = Annotated[bool, Depends(sees_details)]

__all__ = [
    "ADMIN",
    "READ",
    "WRITE",
    "Admin",
    "Jobs",
    "Now",
    "SeesDetails",
    "container_of",
    "declared_scope",
]
