"""Who may see and do what on the dashboard: every dashboard route (pages, partials, the event
stream, actions, sign-in) against a table of the scope it needs, for anonymous visitors,
forged or foreign cookies, API-key sessions and proxy identities of each scope; the session
cookie's flags; CSRF tokens; the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from host.settings import DashboardSettings, Scope
from tests.api.conftest import (
    KEYS,
    LOOPBACK,
    REMOTE,
    auth_settings,
    client_of,
    running,
    settings_for,
)
from tests.api.test_auth import routes_of
from tests.dashboard.conftest import enqueue, unique
from tests.dashboard.server import BASE, LiveServer, csrf_of

OPEN = "open"
SIGN_IN = "sign-in"
REQUIRED: dict[tuple[str, str], Scope | str] = {
    ("GET", "/jobs"): Scope.READ,
    ("GET", "/jobs/list"): Scope.READ,
    ("GET", "/jobs/job/{job_id}"): Scope.READ,
    ("GET", "/jobs/recurring"): Scope.READ,
    ("GET", "/jobs/batches"): Scope.READ,
    ("GET", "/jobs/servers"): Scope.READ,
    ("GET", "/jobs/retries"): Scope.READ,
    ("GET", "/jobs/events"): Scope.READ,
    ("POST", "/jobs/job/{job_id}/requeue"): Scope.WRITE,
    ("POST", "/jobs/job/{job_id}/delete"): Scope.WRITE,
    ("POST", "/jobs/bulk"): Scope.WRITE,
    ("POST", "/jobs/recurring/{recurring_id}/trigger"): Scope.WRITE,
    ("POST", "/jobs/recurring/{recurring_id}/pause"): Scope.WRITE,
    ("POST", "/jobs/recurring/{recurring_id}/resume"): Scope.WRITE,
    ("POST", "/jobs/recurring/{recurring_id}/remove"): Scope.ADMIN,
    ("POST", "/jobs/logout"): Scope.READ,
    ("GET", "/jobs/login"): SIGN_IN,
    ("POST", "/jobs/login"): SIGN_IN,
    ("Mount", "/jobs/static"): OPEN,
}
"""Every dashboard route and the scope it needs."""
RANK = {scope: rank for rank, scope in enumerate(Scope)}
RECURRING = {"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat"}


@dataclass
class Visitor:
    name: str
    scope: Scope | None
    client: httpx.Client
    csrf: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def visitors(live: LiveServer) -> Iterator[list[Visitor]]:
    found = [Visitor("anonymous", None, live.client())]
    forged = live.client()
    forged.cookies.set("jobs_session", "eyJuYW1lIjoiYWRtaW4ta2V5In0.forged", path=BASE)
    found.append(Visitor("forged cookie", None, forged))
    found.append(Visitor("API key header", None, live.client(headers={"X-API-Key": "nope"})))
    found.append(Visitor("proxy without scope group", None, _proxied(live, "eve", "staff")))
    for scope in Scope:
        client, csrf = live.signed_in(scope)
        found.append(Visitor(f"{scope} session", scope, client, csrf))
        proxied = _proxied(live, f"{scope}-person", f"staff, jobs:{scope}")
        found.append(
            Visitor(f"{scope} proxy user", scope, proxied, csrf_of(proxied.get(BASE).text))
        )
    yield found
    for visitor in found:
        visitor.client.close()


def _proxied(live: LiveServer, user: str, groups: str) -> httpx.Client:
    return live.client(headers={"X-Forwarded-User": user, "X-Forwarded-Groups": groups})


def test_every_dashboard_route_is_in_the_table(live: LiveServer) -> None:
    served = {(m, p) for m, p in routes_of(live.app) if p.startswith(BASE)}

    assert served == set(REQUIRED), "dashboard routes and the table differ"


def test_every_route_admits_exactly_the_visitors_with_its_scope(
    live: LiveServer, visitors: list[Visitor]
) -> None:
    job_id = enqueue(live, "HeartbeatJobs.beat", delay_seconds=3600, queue=unique("matrix"))
    kept = _recurring(live)
    wrong = []
    for (method, path), needed in sorted(REQUIRED.items(), key=str):
        for visitor in visitors:
            recurring_id = _recurring(live) if path.endswith("/remove") else kept
            url = path.format(job_id=job_id, recurring_id=recurring_id)
            response = _call(method, url, visitor, job_id)
            problem = _judge(method, path, needed, visitor, response)
            if problem:
                wrong.append(problem)

    assert wrong == []


def _recurring(live: LiveServer) -> str:
    """A recurring job (one of its own for each call that may remove it)."""
    recurring_id = unique("matrix")
    with live.admin_api() as api:
        assert api.put(f"/api/recurring/{recurring_id}", json=RECURRING).status_code == 200
    return recurring_id


def _call(method: str, url: str, visitor: Visitor, job_id: str) -> httpx.Response:
    if method == "Mount":
        return visitor.client.get(f"{url}/dashboard.css")
    if url == f"{BASE}/events":
        return _first_bytes(visitor.client, url)
    if method == "GET":
        return visitor.client.get(url)
    data = {"csrf_token": visitor.csrf, "action": "requeue", "ids": job_id}
    if url.endswith("/login"):
        data = {"api_key": "not-a-key"}
    # A copy of the client, so that signing out does not end the visitor's own session.
    headers, cookies = visitor.client.headers, visitor.client.cookies
    with httpx.Client(base_url=visitor.client.base_url, headers=headers, cookies=cookies) as copy:
        return copy.post(url, data=data)


def _first_bytes(client: httpx.Client, url: str) -> httpx.Response:
    """The event stream's answer, and for an admitted visitor its first event."""
    with client.stream("GET", url) as response:
        if response.status_code == 200:
            first = next(response.iter_text())
            assert first.startswith("event: "), first
        return response


def _judge(
    method: str, path: str, needed: Scope | str, visitor: Visitor, response: httpx.Response
) -> str:
    status = response.status_code
    if needed == OPEN:
        ok, expected = status == 200, "200"
    elif needed == SIGN_IN:
        ok, expected = status in (200, 303, 401), "the sign-in form"
    elif visitor.scope is None:
        to_login = status == 303 and response.headers["location"].startswith(f"{BASE}/login")
        stream = path.endswith("/events")
        ok = to_login if method == "GET" and not stream else status == 401
        expected = "a redirect to sign in" if method == "GET" and not stream else "401"
    elif RANK[visitor.scope] < RANK[Scope(needed)]:
        ok, expected = status == 403, "403"
    else:
        ok, expected = status in (200, 303), "200 or 303"
    return "" if ok else f"{method} {path} as {visitor.name}: {status}, expected {expected}"


def test_signed_out_pages_show_no_data(live: LiveServer) -> None:
    text = unique("secret-argument")
    job_id = enqueue(live, "Probe.say", text, delay_seconds=3600)

    with live.client(follow_redirects=True) as visitor:
        pages = [visitor.get(f"{BASE}{path}") for path in ("", "/list", f"/job/{job_id}")]

    for page in pages:
        assert page.url.path == f"{BASE}/login" and page.status_code == 200
        assert text not in page.text and 'data-testid="job-state"' not in page.text
        assert 'name="csrf_token"' not in page.text and "<table" not in page.text


def test_session_cookie_is_signed_http_only_strict_and_expires(live: LiveServer) -> None:
    with live.client() as client:
        response = client.post(f"{BASE}/login", data={"api_key": KEYS[Scope.READ]})

    cookie = response.headers["set-cookie"]
    assert cookie.startswith("jobs_session=") and "." in cookie.split(";")[0]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= flags
    assert "samesite=strict" in cookie.lower() and f"path={BASE}" in cookie.lower()
    assert "secure" not in flags  # plain HTTP here; over HTTPS it is set


def test_wrong_key_is_refused_at_sign_in(live: LiveServer) -> None:
    with live.client() as client:
        response = client.post(f"{BASE}/login", data={"api_key": "guess"})

    assert response.status_code == 401 and "not valid" in response.text
    assert "set-cookie" not in response.headers


def test_tampered_session_is_not_accepted(live: LiveServer) -> None:
    client, _ = live.signed_in(Scope.ADMIN)
    value = client.cookies["jobs_session"]
    body, _, mac = value.partition(".")
    client.cookies.set("jobs_session", f"{body}x.{mac}", path=BASE)

    response = client.get(BASE)

    assert response.status_code == 303 and "/login" in response.headers["location"]


@pytest.mark.parametrize("token", [None, "", "wrong", "other-session"])
def test_post_without_the_viewers_csrf_token_is_forbidden(
    live: LiveServer, token: str | None
) -> None:
    job_id = enqueue(live, "HeartbeatJobs.beat", delay_seconds=3600, queue=unique("csrf"))
    client, _ = live.signed_in(Scope.ADMIN)
    if token == "other-session":
        token = live.signed_in(Scope.ADMIN)[1]
    data = {} if token is None else {"csrf_token": token}

    response = client.post(f"{BASE}/job/{job_id}/delete", data=data)

    assert response.status_code == 403
    with live.admin_api() as api:
        assert api.get(f"/api/jobs/{job_id}").json()["state"] == "scheduled"


def test_read_scope_sees_no_buttons_and_a_forged_post_is_forbidden(live: LiveServer) -> None:
    job_id = enqueue(live, "HeartbeatJobs.beat", delay_seconds=3600, queue=unique("reader"))
    reader, csrf = live.signed_in(Scope.READ)

    pages = [reader.get(f"{BASE}{path}").text for path in ("/list", f"/job/{job_id}")]
    forged = reader.post(f"{BASE}/job/{job_id}/delete", data={"csrf_token": csrf})

    for page in pages:  # the only form that posts is the one to sign out
        assert re.findall(r'<form[^>]*method="post"[^>]*>', page) == [
            f'<form class="who" method="post" action="{BASE}/logout">'
        ]
    assert forged.status_code == 403


def test_every_dashboard_response_carries_the_security_headers(live: LiveServer) -> None:
    with live.client() as anonymous:
        responses = [
            anonymous.get(f"{BASE}/login"),
            anonymous.get(BASE),
            anonymous.get(f"{BASE}/static/dashboard.css"),
            anonymous.post(f"{BASE}/logout"),
        ]

    for response in responses:
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_sign_in_never_sends_the_browser_to_another_site(live: LiveServer) -> None:
    with live.client() as client:
        for target in ("https://evil.example/", "//evil.example", "/jobs/../x", "/jobs\\@x"):
            response = client.post(
                f"{BASE}/login", data={"api_key": KEYS[Scope.READ], "next": target}
            )
            location = response.headers["location"]
            assert location == BASE or location.startswith(f"{BASE}/"), location
            assert "evil" not in location and ".." not in location


def _key(scope: Scope) -> str:
    from tests.api.conftest import KEYS

    return KEYS[scope]


@pytest.mark.parametrize(
    ("anonymous_localhost", "client", "status"),
    [(False, LOOPBACK, 303), (True, LOOPBACK, 200), (True, REMOTE, 303)],
)
async def test_development_mode_admits_only_this_machine(
    tmp_path: Path, anonymous_localhost: bool, client: tuple[str, int], status: int
) -> None:
    auth = auth_settings(allow_anonymous_localhost=anonymous_localhost)
    async with running(settings_for(None, tmp_path, auth), roles=frozenset()) as app:
        async with client_of(app, None, client) as visitor:
            response = await visitor.get(BASE)

    assert response.status_code == status


async def test_identity_headers_count_only_from_the_proxy_addresses(tmp_path: Path) -> None:
    settings = settings_for(None, tmp_path).model_copy(
        update={"dashboard": DashboardSettings(proxy_ips=[LOOPBACK[0]])}
    )
    headers = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "jobs:admin"}
    async with running(settings, roles=frozenset()) as app:
        async with client_of(app, None, REMOTE) as stranger:
            spoofed = await stranger.get(BASE, headers=headers)
        async with client_of(app, None, LOOPBACK) as proxy:
            proxied = await proxy.get(BASE, headers=headers)

    assert spoofed.status_code == 303
    assert proxied.status_code == 200 and "mallory (admin)" in proxied.text
