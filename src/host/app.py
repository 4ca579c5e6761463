"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response, status

from host import api, dashboard, metrics
from host.auth import Authenticator
from host.container import Container, create_container
from host.request_context import RequestContextMiddleware
from host.runtime import JobRuntime
from host.settings import Settings
from host.tracing import configure_tracing
from infrastructure.jobs.backend import Role

ALL_ROLES = frozenset({Role.WORKER, Role.SCHEDULER})


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    roles: frozenset[Role] = ALL_ROLES,
) -> FastAPI:
    """Build the app; its lifespan runs the job runtime with `roles` (a worker and a
    scheduler by default, so one process is a whole service)."""
    container = container or create_container(settings)
    settings = container.settings()
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = JobRuntime(container, roles)
        app.state.runtime = runtime
        runtime.start()
        authenticator.start()
        try:
            yield
        finally:
            authenticator.close()
            await runtime.stop()

    app = FastAPI(
        title="jobs-service",
        summary="Background jobs: enqueue, schedule, recurring, continuations, batches.",
        lifespan=lifespan,
        # The API serves these itself, behind authentication, and limits request bodies
        # itself, answering with a problem (see host.api).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    app.state.runtime = None
    authenticator = Authenticator(settings.auth)
    app.state.authenticator = authenticator

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up (never checks dependencies)."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], responses={503: {"description": "Not ready yet"}})
    async def ready(request: Request, response: Response) -> dict[str, str]:
        """Database reachable, schema at head, job runtime running."""
        runtime: JobRuntime | None = request.app.state.runtime
        reason = "starting" if runtime is None else await runtime.ready()
        if reason is not None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": "unavailable", "reason": reason}
        return {"status": "ready"}

    api.install(app, settings, container.features())
    dashboard.install(app, settings, container)
    app.include_router(metrics.router(settings))
    app.add_middleware(RequestContextMiddleware)
    return app
