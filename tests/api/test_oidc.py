"""OIDC bearer tokens against an issuer that answers slowly or not at all: the issuer's keys
are fetched on an executor of their own, so unrelated requests (and the SQL store's threads)
never wait for it; few callers wait at a time; clocks may differ by the leeway."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from host.settings import AuthSettings, Scope
from tests.api.conftest import (
    KEYS,
    WAIT_SECONDS,
    Issuer,
    auth_settings,
    client_of,
    running,
    settings_for,
)


class GatedJwks:
    """A JWKS endpoint on 127.0.0.1 that holds every request until `release()`."""

    def __init__(self, issuer: Issuer) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": issuer.kid, "alg": "RS256", "use": "sig"}]})
        self.asked = threading.Event()
        self.released = threading.Event()
        self.requests = 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler(body))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"

    def _handler(self, body: str) -> type[http.server.BaseHTTPRequestHandler]:
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.requests += 1
                gate.asked.set()
                gate.released.wait(WAIT_SECONDS)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def release(self) -> None:
        self.released.set()

    def serve(self) -> Iterator[GatedJwks]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    async def wait_until_asked(self) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            # Set by the server's thread; a thread of the loop's pool could be one we test.
            while not self.asked.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.01)


@pytest.fixture
def gated(issuer: Issuer) -> Iterator[GatedJwks]:
    yield from GatedJwks(issuer).serve()


def oidc_on(issuer: Issuer, jwks: GatedJwks, **changes: Any) -> AuthSettings:
    return auth_settings(issuer).model_copy(update={"oidc_jwks_url": jwks.url, **changes})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_hanging_issuer_does_not_delay_unrelated_reads(
    tmp_path: Path, issuer: Issuer, gated: GatedJwks
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path, oidc_on(issuer, gated))
    async with running(settings, roles=frozenset()) as app:
        async with client_of(app, None) as caller, client_of(app, KEYS[Scope.READ]) as reader:
            # Given twenty callers whose tokens need the issuer's keys, which do not come
            token = issuer.token("jobs:read")
            waiting = [
                asyncio.create_task(caller.get("/api/stats", headers=bearer(token)))
                for _ in range(20)
            ]
            await gated.wait_until_asked()

            # When API-key callers read from the SQL store meanwhile
            async with asyncio.timeout(WAIT_SECONDS):
                reads = [(await reader.get("/api/jobs?limit=5")).status_code for _ in range(10)]
            issuer_still_silent = not gated.released.is_set()
            gated.release()
            answers = await asyncio.gather(*waiting)

    # Then they were answered while the issuer had not answered yet
    assert reads == [200] * 10
    assert issuer_still_silent
    assert {answer.status_code for answer in answers} <= {200, 503}


async def test_callers_beyond_the_verification_limit_get_503_at_once(
    tmp_path: Path, issuer: Issuer, gated: GatedJwks
) -> None:
    auth = oidc_on(issuer, gated, oidc_max_concurrent_verifications=1)
    async with running(settings_for(None, tmp_path, auth), roles=frozenset()) as app:
        async with client_of(app, None) as caller:
            token = issuer.token("jobs:read")
            calls = [
                asyncio.create_task(caller.get("/api/stats", headers=bearer(token)))
                for _ in range(2)
            ]
            done, _ = await asyncio.wait(calls, timeout=WAIT_SECONDS, return_when="FIRST_COMPLETED")
            issuer_still_silent = not gated.released.is_set()
            gated.release()
            answers = await asyncio.gather(*calls)

    first = done.pop().result()
    assert issuer_still_silent
    assert first.status_code == 503 and first.headers["Retry-After"].isdigit()
    assert first.headers["content-type"] == "application/problem+json"
    assert sorted(answer.status_code for answer in answers) == [200, 503]


async def test_tokens_naming_an_unknown_key_do_not_fetch_the_keys_each_time(
    tmp_path: Path, issuer: Issuer, gated: GatedJwks
) -> None:
    gated.release()
    async with running(settings_for(None, tmp_path, oidc_on(issuer, gated))) as app:
        async with client_of(app, None) as caller:
            good = await caller.get("/api/stats", headers=bearer(issuer.token("jobs:read")))
            token = dataclasses.replace(issuer, kid="rotated-away").token("jobs:read")
            first = await caller.get("/api/stats", headers=bearer(token))
            fetches = gated.requests
            again = [(await caller.get("/api/stats", headers=bearer(token))) for _ in range(5)]

    assert good.status_code == 200
    assert [r.status_code for r in [first, *again]] == [401] * 6
    assert gated.requests == fetches


@pytest.mark.parametrize(("expired_ago", "status"), [(20, 200), (600, 401)])
async def test_clock_skew_up_to_the_leeway_is_tolerated(
    tmp_path: Path, issuer: Issuer, gated: GatedJwks, expired_ago: float, status: int
) -> None:
    gated.release()
    async with running(settings_for(None, tmp_path, oidc_on(issuer, gated))) as app:
        async with client_of(app, None) as caller:
            token = issuer.token("jobs:read", expires_in=-expired_ago)
            response = await caller.get("/api/stats", headers=bearer(token))

    assert response.status_code == status


def test_the_leeway_is_a_setting_of_its_own() -> None:
    assert AuthSettings().oidc_leeway_seconds == 60
    assert AuthSettings(oidc_leeway_seconds=0).oidc_leeway_seconds == 0
    with pytest.raises(ValueError, match="less than or equal"):
        AuthSettings(oidc_leeway_seconds=3600)
