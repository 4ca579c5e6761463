"""The dashboard of one app: its settings, who is looking, the templates and the live feed;
and the dependencies its routes use to admit a viewer and check a form's CSRF token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from application.jobs import JobFilter
from host.auth import Authenticator
from host.container import Container
from host.dashboard import views
from host.dashboard.live import LiveFeed
from host.dashboard.security import DashboardError, SignInRequired
from host.dashboard.sessions import CSRF_FIELD, CSRF_HEADER, DashboardAuth, Viewer
from host.settings import Scope, Settings

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def environment() -> jinja2.Environment:
    """Templates with autoescaping everywhere: arguments and log lines are never markup."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(Scope=Scope, empty_filter=JobFilter())
    env.filters.update(
        when=views.when,
        since=views.since,
        pretty_json=views.pretty_json,
        cron_words=views.cron_words,
    )
    return env


class Dashboard:
    def __init__(
        self, settings: Settings, container: Container, authenticator: Authenticator
    ) -> None:
        self.settings = settings.dashboard
        self.base = self.settings.path
        self.auth = DashboardAuth(settings, authenticator)
        self.templates = environment()
        self.container = container
        self.feed = LiveFeed(
            container.admin(),
            container.jobs(),
            container.clock(),
            interval=self.settings.live_seconds,
            counts_interval=self.settings.counts_seconds,
        )

    def page(
        self, request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.fragment(name, viewer=viewer, request=request, **context)
        return HTMLResponse(html, status_code=status)

    def fragment(self, name: str, **context: Any) -> str:
        """A template rendered with what every page and partial needs."""
        common = {
            "base": self.base,
            "title": self.settings.title,
            "now": self.container.clock().now(),
            "viewer": None,
            "request": None,
        }
        return self.templates.get_template(name).render(common | context)


def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


Site = Annotated[Dashboard, Depends(dashboard_of)]


def admit(scope: Scope) -> Callable[..., Awaitable[Viewer]]:
    """A dependency admitting viewers with `scope` or more; a POST must also carry the
    viewer's CSRF token (form field or header). Nobody signed in: a page sends the browser to
    the sign-in form, anything else gets 401."""

    async def check(request: Request, site: Site) -> Viewer:
        viewer = site.auth.viewer(request)
        if viewer is None:
            if request.method == "GET" and request.url.path != f"{site.base}/events":
                raise SignInRequired()
            raise DashboardError(401, "Sign in first.")
        request.state.principal = viewer.name
        if not viewer.can(scope):
            raise DashboardError(403, f"This needs the {scope} scope; you have {viewer.scope}.")
        if request.method == "POST":
            await _check_csrf(request, viewer)
        return viewer

    return check


async def _check_csrf(request: Request, viewer: Viewer) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise DashboardError(403, "The form's CSRF token is missing or wrong; reload the page.")


Reader = Annotated[Viewer, Depends(admit(Scope.READ))]
Writer = Annotated[Viewer, Depends(admit(Scope.WRITE))]
Administrator = Annotated[Viewer, Depends(admit(Scope.ADMIN))]
