"""The whole service served by uvicorn on a free port of 127.0.0.1, in a thread of the test
process: browsers and HTTP clients reach it like a deployment, and the tests can count what
its database does."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from dependency_injector import providers
from fastapi import FastAPI

from host.app import create_app
from host.container import Container, create_container
from host.settings import DashboardSettings, HttpSettings, Scope, Settings
from tests.api.conftest import KEYS, auth_settings, settings_for
from tests.dashboard.handlers import registry

START_SECONDS = 30.0
BASE = "/jobs"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PROXY = "127.0.0.1"
"""The tests play the authenticating proxy from this address."""


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    container: Container
    settings: Settings
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **options: Any) -> httpx.Client:
        """A client closed with the server (tests need not close it)."""
        options.setdefault("follow_redirects", False)
        client = httpx.Client(base_url=self.url, timeout=10, **options)
        self.clients.append(client)
        return client

    def admin_api(self) -> httpx.Client:
        return self.client(headers={"X-API-Key": KEYS[Scope.ADMIN]})

    def signed_in(self, scope: Scope) -> tuple[httpx.Client, str]:
        """A client holding a session of `scope`, and its CSRF token."""
        client = self.client()
        response = client.post(f"{BASE}/login", data={"api_key": KEYS[scope]})
        assert response.status_code == 303, response.text
        return client, csrf_of(client.get(BASE).text)


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def live_settings(tmp_path: Path) -> Settings:
    base = settings_for(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path)
    jobs = base.jobs.model_copy(update={"concurrency": 2, "heartbeat_seconds": 0.3})
    return base.model_copy(
        update={
            "jobs": jobs,
            "http": HttpSettings(max_body_bytes=64 * 1024),
            "auth": auth_settings(),
            "dashboard": DashboardSettings(live_seconds=0.2, counts_seconds=0.2, proxy_ips=[PROXY]),
        }
    )


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    container = create_container(settings)
    container.handler_registry.override(providers.Singleton(registry))
    app = create_app(settings, container)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    live = None
    try:
        url = _wait_until_ready(server)
        live = LiveServer(url=url, app=app, container=container, settings=settings)
        yield live
    finally:
        for client in live.clients if live else []:
            client.close()
        server.should_exit = True
        thread.join(START_SECONDS)


def _wait_until_ready(server: uvicorn.Server) -> str:
    deadline = time.monotonic() + START_SECONDS
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url) as client:
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the live server did not get ready"
            time.sleep(0.05)
    return url
