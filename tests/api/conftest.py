"""The app as `serve` builds it, on SQLite and PostgreSQL, with API keys of each scope and an
OIDC issuer whose signing keys the tests generate (its JWKS served on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from application.jobs import JobId, JobState
from host.app import ALL_ROLES, create_app
from host.container import Container
from host.settings import (
    ApiKey,
    AuthSettings,
    DatabaseSettings,
    HttpSettings,
    JobsSettings,
    Scope,
    Settings,
)
from infrastructure.jobs.backend import Role
from infrastructure.jobs.sql.tables import build_metadata
from infrastructure.persistence.sql.tables import metadata as business_tables
from tests.databases import empty_tables

WAIT_SECONDS = 20.0
REMOTE = ("203.0.113.5", 1234)
"""A client address outside the machine (TEST-NET-3)."""
LOOPBACK = ("127.0.0.1", 50000)
MAX_BODY_BYTES = 256 * 1024
PAYLOAD_LIMIT_BYTES = 16 * 1024

KEYS = {scope: f"test-{scope}-key-{uuid.uuid4().hex}" for scope in Scope}
"""A raw API key per scope (only their hashes go into the settings)."""
AUDIENCE = "jobs-service-tests"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Issuer:
    """An OIDC issuer of the tests' own: signs JWTs; its JWKS is served at `jwks_url`."""

    url: str
    jwks_url: str
    key: rsa.RSAPrivateKey
    kid: str = "test-key-1"

    def token(
        self,
        scope: str | list[str] = "jobs:read",
        *,
        expires_in: float = 300,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        subject: str = "ci-bot",
    ) -> str:
        now = dt.datetime.now(dt.UTC)
        claims = {
            "sub": subject,
            "iss": issuer or self.url,
            "aud": audience,
            "iat": now,
            "exp": now + dt.timedelta(seconds=expires_in),
            "scope": scope,
        }
        return jwt.encode(
            claims, signing_key or self.key, algorithm="RS256", headers={"kid": self.kid}
        )


def _jwks_handler(document: bytes) -> type[http.server.BaseHTTPRequestHandler]:
    class JwksHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests capture stderr

    return JwksHandler


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": "test-key-1", "alg": "RS256", "use": "sig"}]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _jwks_handler(document.encode()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield Issuer(url=f"{base}/issuer", jwks_url=f"{base}/jwks.json", key=key)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def auth_settings(issuer: Issuer | None = None, **changes: Any) -> AuthSettings:
    keys = [ApiKey(name=f"{scope}-key", sha256=sha256(KEYS[scope]), scope=scope) for scope in Scope]
    oidc = (
        {"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE, "oidc_jwks_url": issuer.jwks_url}
        if issuer
        else {}
    )
    return AuthSettings(api_keys=keys, **oidc, **changes)


def settings_for(
    database_url: str | None, tmp_path: Path, auth: AuthSettings | None = None
) -> Settings:
    """Settings on `database_url` (None: the memory store): fast polling, no sample
    every-minute job, small limits (so the tests stay small)."""
    return Settings(
        db=DatabaseSettings(
            url=database_url or "sqlite://",
            persistence="sql" if database_url is not None else "memory",
        ),
        jobs=JobsSettings(
            backend="sql" if database_url is not None else "memory",
            poll_seconds=0.05,
            scheduler_poll_seconds=0.1,
            heartbeat_seconds=0.5,
            payload_limit_bytes=PAYLOAD_LIMIT_BYTES,
            sample_every_minute=False,
        ),
        http=HttpSettings(max_body_bytes=MAX_BODY_BYTES),
        auth=auth or auth_settings(),
        temp_directory=tmp_path / "tmp",
    )


@asynccontextmanager
async def running(settings: Settings, roles: frozenset[Role] = ALL_ROLES) -> AsyncIterator[FastAPI]:
    """The app after start-up, ready to serve; stopped on exit."""
    app = create_app(settings, roles=roles)
    async with app.router.lifespan_context(app):
        async with client_of(app, None, LOOPBACK) as client:
            await wait_until_ready(client)
        yield app


def client_of(
    app: FastAPI, key: str | None = KEYS[Scope.ADMIN], client: tuple[str, int] = REMOTE
) -> httpx.AsyncClient:
    """A client at the address `client`, sending the API key `key` (admin by default)."""
    headers = {"X-API-Key": key} if key is not None else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=client),
        base_url="http://test",
        headers=headers,
    )


async def wait_until_ready(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if (await client.get("/health/ready")).status_code == 200:
                return
            await asyncio.sleep(0.02)


def container_of(app: FastAPI) -> Container:
    container: Container = app.state.container
    return container


async def wait_for_state(app: FastAPI, job_id: JobId, *states: JobState) -> None:
    jobs = container_of(app).jobs()
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if (await jobs.get(job_id)).state in states:
                return
            await asyncio.sleep(0.02)


def database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file of the test's own, or the session's PostgreSQL database emptied."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    engine: sa.Engine = request.getfixturevalue("postgresql_engine")
    empty_tables(engine, build_metadata())
    empty_tables(engine, business_tables)
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The whole service (API, worker, scheduler) on SQLite and on PostgreSQL."""
    url = database_url(request.param, request, tmp_path)
    async with running(settings_for(url, tmp_path)) as app:
        yield app


@pytest.fixture(params=["sqlite", "postgresql"])
async def idle_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The service without a worker or scheduler: jobs stay where the test puts them."""
    url = database_url(request.param, request, tmp_path)
    async with running(settings_for(url, tmp_path), roles=frozenset()) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of `app`, from a remote address."""
    async with client_of(app) as client:
        yield client
