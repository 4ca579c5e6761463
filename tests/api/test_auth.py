"""Who may call what (R13): every route of the app against a table of the scope it needs, for
anonymous callers, bad keys, bad JWTs and keys and JWTs of each scope. A route missing from
the table (or a table row without a route) fails the test."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.types import Receive, Send
from starlette.types import Scope as Scope_

from domain.maintenance import HeartbeatJobs
from host.api import business
from host.scopes import declared_scope
from host.settings import DashboardSettings, Scope
from tests.api.conftest import (
    KEYS,
    LOOPBACK,
    REMOTE,
    Issuer,
    auth_settings,
    client_of,
    container_of,
    running,
    settings_for,
)

OPEN = "open"
DASHBOARD = DashboardSettings().path
REQUIRED: dict[tuple[str, str], Scope | str] = {
    ("GET", "/health/live"): OPEN,
    ("GET", "/health/ready"): OPEN,
    ("GET", "/metrics"): Scope.READ,
    ("GET", "/openapi.json"): Scope.READ,
    ("GET", "/docs"): Scope.READ,
    ("GET", "/docs/oauth2-redirect"): Scope.READ,
    ("GET", "/redoc"): Scope.READ,
    ("GET", "/api/handlers"): Scope.READ,
    ("GET", "/api/jobs"): Scope.READ,
    ("POST", "/api/jobs"): Scope.WRITE,
    ("GET", "/api/jobs/{job_id}"): Scope.READ,
    ("GET", "/api/jobs/{job_id}/explanation"): Scope.READ,
    ("DELETE", "/api/jobs/{job_id}"): Scope.WRITE,
    ("POST", "/api/jobs/{job_id}/requeue"): Scope.WRITE,
    ("POST", "/api/jobs/bulk-delete"): Scope.ADMIN,
    ("POST", "/api/jobs/bulk-requeue"): Scope.ADMIN,
    ("GET", "/api/recurring"): Scope.READ,
    ("GET", "/api/recurring/{recurring_id}"): Scope.READ,
    ("PUT", "/api/recurring/{recurring_id}"): Scope.ADMIN,
    ("DELETE", "/api/recurring/{recurring_id}"): Scope.ADMIN,
    ("POST", "/api/recurring/{recurring_id}/trigger"): Scope.WRITE,
    ("POST", "/api/recurring/{recurring_id}/pause"): Scope.WRITE,
    ("POST", "/api/recurring/{recurring_id}/resume"): Scope.WRITE,
    ("GET", "/api/batches/{batch_id}"): Scope.READ,
    ("GET", "/api/servers"): Scope.READ,
    ("GET", "/api/stats"): Scope.READ,
}
"""Every route of the app and the scope it needs ("open": anyone), but the business API's:
those declare their scope and an example body, read from the app (`declared`)."""

JSON = {"content-type": "application/json"}
RANK = {scope: rank for rank, scope in enumerate(Scope)}
RECURRING = {"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat"}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/jobs"): {"handler": "HeartbeatJobs.beat", "delay_seconds": 3600},
    ("POST", "/api/jobs/bulk-delete"): {"queue": "nothing-here"},
    ("POST", "/api/jobs/bulk-requeue"): {"queue": "nothing-here"},
    ("PUT", "/api/recurring/{recurring_id}"): RECURRING,
}


@dataclass(frozen=True)
class Caller:
    """A way to call: the headers it sends, and the scope it should get (None: refused)."""

    name: str
    headers: dict[str, str]
    scope: Scope | None


def routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, whatever its kind (the dashboard's
    included: tests/dashboard/test_access.py has their table)."""
    found: set[tuple[str, str]] = set()
    # Included routers stay routers in `app.routes` (FastAPI >= 0.16x): walk through them.
    for route in iter_route_contexts(app.routes):
        methods = route.methods or {type(route.original_route).__name__}
        path = route.path or repr(route.original_route)
        found |= {(method, path) for method in methods if method != "HEAD"}
    return found


def callers(issuer: Issuer) -> list[Caller]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [
        Caller("anonymous", {}, None),
        Caller("bad key", {"X-API-Key": "not-a-key"}, None),
        Caller("empty bearer", {"Authorization": "Bearer "}, None),
        Caller("garbage bearer", {"Authorization": "Bearer not.a.jwt"}, None),
        Caller("basic auth", {"Authorization": "Basic YWRtaW46YWRtaW4="}, None),
    ]
    bad_tokens = {
        "expired JWT": issuer.token("jobs:admin", expires_in=-3600),
        "JWT of another audience": issuer.token("jobs:admin", audience="someone-else"),
        "JWT of another issuer": issuer.token("jobs:admin", issuer="https://evil.example"),
        "JWT signed by a stranger": issuer.token("jobs:admin", signing_key=stranger),
    }
    refused += [bearer(name, token, None) for name, token in bad_tokens.items()]
    granted = [Caller(f"{scope} key", {"X-API-Key": KEYS[scope]}, scope) for scope in Scope]
    granted += [bearer(f"{scope} JWT", issuer.token(f"jobs:{scope}"), scope) for scope in Scope]
    granted.append(
        bearer("JWT of list scopes", issuer.token(["openid", "jobs:write"]), Scope.WRITE)
    )
    return refused + granted


def bearer(name: str, token: str, scope: Scope | None) -> Caller:
    return Caller(name, {"Authorization": f"Bearer {token}"}, scope)


@pytest.fixture
async def app(issuer: Issuer, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app on the memory store, without a worker: jobs stay where the calls put them."""
    settings = settings_for(None, tmp_path, auth_settings(issuer))
    async with running(settings, roles=frozenset()) as app:
        yield app


@dataclass
class Targets:
    job_id: str
    batch_id: str
    recurring_id: str = "matrix"


async def targets(app: FastAPI) -> Targets:
    jobs = container_of(app).jobs()
    async with jobs.batch() as batch:
        await batch.enqueue(HeartbeatJobs.beat)
    job_id = await jobs.schedule(dt.timedelta(hours=1), HeartbeatJobs.beat)
    return Targets(job_id=str(job_id), batch_id=str(batch.id))


async def call(
    app: FastAPI, method: str, path: str, targets: Targets, caller: Caller
) -> httpx.Response:
    """`method path` as `caller`, on targets that exist (a recurring job even after a DELETE)."""
    async with client_of(app) as admin, client_of(app, None) as client:
        if "{recurring_id}" in path:
            await admin.put(f"/api/recurring/{targets.recurring_id}", json=RECURRING)
        business_routes = declared(app)
        if (method, path) in business_routes:
            route = business_routes[method, path]
            url, body = path.format(**route.path_values), route.body
        else:
            url, body = path.format(**vars(targets)), BODIES.get((method, path))
        return await client.request(method, url, json=body, headers=caller.headers)


@dataclass(frozen=True)
class Declared:
    """What a business route declares: the scope it needs and an example body."""

    scope: Scope
    body: Any
    path_values: dict[str, str]


def declared(app: FastAPI) -> dict[tuple[str, str], Declared]:
    """The business routes (under `business.PREFIX`), as they declare themselves."""
    found = {}
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path or ""
        if isinstance(route, APIRoute) and path.startswith(business.PREFIX):
            scope = declared_scope(route)
            assert scope is not None, f"{path} declares no scope"
            for method in route.methods or ():
                found[method, path] = Declared(scope, _example_body(route), _path_values(route))
    return found


def _example_body(route: APIRoute) -> Any:
    if not route.dependant.body_params:
        return None
    model = route.dependant.body_params[0].field_info.annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model.model_json_schema()["examples"][0]


def _path_values(route: APIRoute) -> dict[str, str]:
    """A value of each path parameter's type: ids are UUIDs (that exist nowhere)."""
    return {
        param.name: str(uuid.uuid4()) if param.field_info.annotation is uuid.UUID else "example"
        for param in route.dependant.path_params
    }


def required_of(app: FastAPI) -> dict[tuple[str, str], Scope | str]:
    return {**REQUIRED, **{key: d.scope for key, d in declared(app).items()}}


def api_routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """Every route but the dashboard's (whose pages redirect to a sign-in form)."""
    return {(method, path) for method, path in routes_of(app) if not path.startswith(DASHBOARD)}


def test_every_route_is_in_the_table_and_every_row_is_a_route(app: FastAPI) -> None:
    served, required = api_routes_of(app), required_of(app)

    assert served - required.keys() == set(), "routes missing from the auth table"
    assert required.keys() - served == set(), "table rows that are no routes"
    assert declared(app), "the business routes are found"


async def test_every_route_admits_exactly_the_callers_with_its_scope(
    app: FastAPI,
    issuer: Issuer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    every = callers(issuer)
    where = await targets(app)
    required, business_routes = required_of(app), declared(app)
    outcomes: list[str] = []

    for method, path in sorted(api_routes_of(app)):
        for caller in every:
            response = await call(app, method, path, where, caller)
            # A business route may answer an admitted caller with its own 4xx (an example
            # invoice that does not exist): admitted means neither 401 nor 403.
            lenient = (method, path) in business_routes
            outcomes.append(_judge(method, path, required[method, path], caller, response, lenient))

    wrong = [outcome for outcome in outcomes if outcome]
    assert wrong == []
    secrets = list(KEYS.values()) + [
        value.removeprefix("Bearer ") for c in every for value in c.headers.values()
    ]
    _assert_never_logged(secrets, caplog, capfd)


def _judge(
    method: str,
    path: str,
    needed: Scope | str,
    caller: Caller,
    response: httpx.Response,
    lenient: bool = False,
) -> str:
    """What is wrong with `response` ('' if nothing)."""
    status = response.status_code
    if needed == OPEN:
        expected = "2xx"
        ok = 200 <= status < 300
    elif caller.scope is None:
        expected = "401"
        ok = status == 401 and "www-authenticate" in response.headers
    elif RANK[caller.scope] < RANK[Scope(needed)]:
        expected = "403"
        ok = status == 403
    elif lenient:
        expected = "neither 401 nor 403, nor 5xx"
        ok = status not in (401, 403) and status < 500
    else:
        expected = "2xx"
        ok = 200 <= status < 300
    if ok and status >= 400:
        ok = response.headers["content-type"] == "application/problem+json"
    return "" if ok else f"{method} {path} as {caller.name}: {status}, expected {expected}"


def _assert_never_logged(
    secrets: list[str], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    out, err = capfd.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    everything = "\n".join([out, err, caplog.text, records])
    leaks = [secret[:12] for secret in secrets if secret and secret in everything]
    assert leaks == [], "credentials found in the logs"
    assert re.search(r"denied", everything), "denials are logged (by principal name)"


# --- the development mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "client", "status"),
    [
        (False, LOOPBACK, 401),
        (True, LOOPBACK, 200),
        (True, ("::1", 50000), 200),
        (True, REMOTE, 401),
        (True, ("192.168.1.20", 50000), 401),
        (True, ("127.0.0.6", 50000), 401),  # a sidecar proxy forwards others from there
        (True, ("127.0.1.1", 50000), 401),
        (True, ("testclient", 50000), 401),
    ],
)
async def test_anonymous_callers_are_admitted_only_from_loopback_when_enabled(
    tmp_path: Path, allowed: bool, client: tuple[str, int], status: int
) -> None:
    settings = settings_for(None, tmp_path, auth_settings(allow_anonymous_localhost=allowed))
    async with running(settings) as app, client_of(app, None, client) as anonymous:
        response = await anonymous.put("/api/recurring/local", json=RECURRING)

    assert response.status_code == status


async def test_bodies_are_read_only_after_authentication(app: FastAPI) -> None:
    body_routes = [(m, p) for m, p in sorted(api_routes_of(app)) if (m, p) in BODIES]
    async with client_of(app, None) as anonymous, client_of(app, KEYS[Scope.READ]) as reader:
        for method, path in body_routes:
            url = path.format(recurring_id="anything")
            for client, status in ((anonymous, 401), (reader, 403)):
                response = await client.request(method, url, content=b"{not json", headers=JSON)

                assert response.status_code == status, f"{method} {path}"

    assert len(body_routes) == 4


async def test_credentials_sent_from_loopback_are_still_checked(tmp_path: Path) -> None:
    settings = settings_for(None, tmp_path, auth_settings(allow_anonymous_localhost=True))
    async with running(settings) as app:
        async with client_of(app, "not-a-key", LOOPBACK) as wrong:
            refused = await wrong.get("/api/stats")
        async with client_of(app, KEYS[Scope.READ], LOOPBACK) as reader:
            limited = await reader.post("/api/jobs/bulk-delete", json={"queue": "q"})

    assert refused.status_code == 401 and limited.status_code == 403


async def test_bearer_tokens_are_refused_when_no_issuer_is_configured(
    tmp_path: Path, issuer: Issuer
) -> None:
    async with running(settings_for(None, tmp_path)) as app:
        async with client_of(app, None) as client:
            headers = {"Authorization": f"Bearer {issuer.token('jobs:admin')}"}
            response = await client.get("/api/stats", headers=headers)

    assert response.status_code == 401


async def test_token_without_a_jobs_scope_is_forbidden(tmp_path: Path, issuer: Issuer) -> None:
    async with running(settings_for(None, tmp_path, auth_settings(issuer))) as app:
        async with client_of(app, None) as client:
            for scope in ("openid profile", "jobs:root", "other:admin", ""):
                headers = {"Authorization": f"Bearer {issuer.token(scope)}"}
                assert (await client.get("/api/stats", headers=headers)).status_code == 403


async def test_unreachable_issuer_keys_are_a_503_not_a_401(tmp_path: Path, issuer: Issuer) -> None:
    auth = auth_settings(issuer).model_copy(
        update={"oidc_jwks_url": "http://127.0.0.1:9/jwks.json"}
    )
    async with running(settings_for(None, tmp_path, auth)) as app:
        async with client_of(app, None) as client:
            headers = {"Authorization": f"Bearer {issuer.token('jobs:read')}"}
            response = await client.get("/api/stats", headers=headers)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_principal_name_is_bound_to_the_request_state(app: FastAPI) -> None:
    states: list[dict[str, Any]] = []

    async def spy(scope: Scope_, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        states.append(dict(scope.get("state", {})))

    transport = httpx.ASGITransport(app=spy, client=REMOTE)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/api/stats", headers={"X-API-Key": KEYS[Scope.READ]})

    assert response.status_code == 200
    assert states[-1]["principal"] == "read-key"
