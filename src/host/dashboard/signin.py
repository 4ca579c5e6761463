"""Signing in with an API key (a signed, HttpOnly, SameSite=Strict session cookie, Secure
over HTTPS, with an expiry) and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from host.auth import Unauthenticated
from host.dashboard.sessions import SESSION_COOKIE
from host.dashboard.site import Dashboard, Reader, Site

SEE_OTHER = 303
MAX_KEY_LENGTH = 500

router = APIRouter()


@router.get("/login")
async def login_form(request: Request, site: Site, next: str = "") -> Response:
    if site.auth.viewer(request) is not None:
        return RedirectResponse(_target(site, next), status_code=SEE_OTHER)
    return site.page(request, "login.html", None, next=_target(site, next), error=None)


@router.post("/login")
async def login(
    request: Request,
    site: Site,
    api_key: Annotated[str, Form(max_length=MAX_KEY_LENGTH)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = _target(site, next)
    try:
        session = await site.auth.sign_in(request, api_key)
    except Unauthenticated:
        error = "This API key is not valid."
        return site.page(request, "login.html", None, 401, next=target, error=error)
    response = RedirectResponse(target, status_code=SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(site.settings.session_minutes * 60),
        path=site.base,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(site: Site, viewer: Reader) -> RedirectResponse:
    response = RedirectResponse(f"{site.base}/login", status_code=SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path=site.base, httponly=True, samesite="strict")
    return response


def _target(site: Dashboard, wanted: str) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    inside = wanted == site.base or wanted.startswith(site.base + "/")
    odd = any(part in wanted for part in ("\\", "//", ".."))
    return wanted if inside and not odd else site.base
