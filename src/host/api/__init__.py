"""The jobs REST API under /api: routes, RFC 9457 problem details, protected API docs."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from host import checks
from host.api import business, docs, jobs, monitoring, problems, recurring
from host.api.limits import BodyLimitMiddleware
from host.feature import Feature
from host.settings import Settings


def install(app: FastAPI, settings: Settings, features: Sequence[Feature] = ()) -> None:
    """Add the API's routes, its docs, its body limit and its RFC 9457 error handlers.

    The features' routes join the business API. Raises StartupCheckFailed when a business
    route declares no scope.

    Build `app` with `openapi_url=None, docs_url=None, redoc_url=None` and no
    `max_body_size`: the docs routes and the body limit added here replace FastAPI's own
    (its docs would be open to anyone; its limit answers in plain text).
    """
    feature_routers = [feature.router for feature in features if feature.router is not None]
    business_routers = [business.router, *feature_routers]
    checks.check_routes_declare_a_scope(business_routers)
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.http.max_body_bytes)
    for router in (
        jobs.router,
        recurring.router,
        monitoring.router,
        *business_routers,
        docs.router,
    ):
        app.include_router(router)
    docs.publish_problem_schema(app)
