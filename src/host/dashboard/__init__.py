"""The dashboard at `/jobs` (configurable): server-rendered pages (Jinja2), htmx and its
server-sent events extension vendored as static files, live updates from one shared read.
Never open by default: every page needs a signed-in viewer."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from host.container import Container
from host.dashboard import actions, pages, signin
from host.dashboard.security import DashboardError, SecurityHeadersMiddleware, SignInRequired
from host.dashboard.site import STATIC, Dashboard, dashboard_of
from host.settings import Settings


def install(app: FastAPI, settings: Settings, container: Container) -> None:
    """Serve the dashboard under `settings.dashboard.path`, if enabled (after `create_app`
    has set the app's authenticator)."""
    if not settings.dashboard.enabled:
        return
    dashboard = Dashboard(settings, container, app.state.authenticator)
    app.state.dashboard = dashboard
    for part in (pages.router, actions.router, signin.router):
        app.include_router(part, prefix=dashboard.base, include_in_schema=False)
    app.mount(f"{dashboard.base}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.add_exception_handler(DashboardError, _error_page)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_middleware(SecurityHeadersMiddleware, path=dashboard.base)


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DashboardError)
    site = dashboard_of(request)
    viewer = site.auth.viewer(request)
    return site.page(request, "error.html", viewer, exc.status, message=exc.message)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    site = dashboard_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{site.base}/login?next={quote(here)}", status_code=303)


__all__ = ["install"]
