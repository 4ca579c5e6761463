"""Schemathesis on the OpenAPI document (R12): positive and negative cases for every
operation, authenticated as admin, on SQLite. No case may get a 5xx; every response must match
what the document says (status, content type, schema); invalid input must get a 4xx; and an
operation that succeeds with credentials must refuse the same call without them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import Receive, Scope, Send

from host.app import create_app
from host.settings import Scope as AuthScope
from tests.api.conftest import KEYS, settings_for

ADMIN = {"X-API-Key": KEYS[AuthScope.ADMIN]}
EXAMPLES_PER_OPERATION = 40
MINIMUM_CASES = 1000
READY_SECONDS = 20.0
STOP_SECONDS = 30.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]

CASES: Counter[str] = Counter()
STARTED_AT: list[float] = []


class StartedOnce:
    """Serves `app` with its lifespan started once, on the first call, and stopped only by
    `stop()`: schemathesis's pytest plugin ends every ASGI lifespan after each test, and
    restarting the service per operation would fuzz its start-up instead of its API."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._start()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        if self._running is not None:
            return
        self._loop = asyncio.get_running_loop()
        started = asyncio.Event()

        async def run() -> None:
            async with self.app.router.lifespan_context(self.app):
                started.set()
                await self._stopping.wait()

        self._running = asyncio.create_task(run())
        await started.wait()

    def stop(self) -> None:
        """Stop the app (from any thread but its loop's)."""
        if self._loop is not None and self._running is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(STOP_SECONDS)

    async def _stop(self) -> None:
        self._stopping.set()
        assert self._running is not None
        await self._running


def _fuzzed_app() -> StartedOnce:
    """The app on a SQLite file of its own. Building it does no I/O: it starts (and migrates)
    on the first call, in schemathesis's event loop thread."""
    folder = Path(tempfile.mkdtemp(prefix="jobs-fuzzing-"))
    return StartedOnce(create_app(settings_for(f"sqlite:///{folder / 'jobs.db'}", folder)))


SERVED = _fuzzed_app()
schema = schemathesis.openapi.from_dict(SERVED.app.openapi())
schema.app = SERVED
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module", autouse=True)
def ready_app() -> Iterator[None]:
    """The fuzzed app, started and ready before the first case; stopped (and its files
    removed) after the last."""
    started = time.monotonic()
    STARTED_AT.append(started)
    try:
        with asgi.get_client(SERVED) as client:  # type: ignore[arg-type]  # any ASGI app
            while client.get("/health/ready").status_code != 200:
                assert time.monotonic() - started < READY_SECONDS, "the app did not get ready"
                time.sleep(0.05)
        yield
    finally:
        SERVED.stop()
        folder = SERVED.app.state.container.settings().temp_directory.parent
        shutil.rmtree(folder, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case[Any]) -> None:
    response = case.call(headers=ADMIN)
    CASES["all"] += 1
    CASES[case.meta.generation.mode.value if case.meta else "unknown"] += 1
    CASES["5xx"] += response.status_code >= 500
    case.validate_response(response, checks=CHECKS, headers=ADMIN)


def test_fuzzing_generated_enough_cases_and_no_server_error(summary_lines: list[str]) -> None:
    """Runs after the operations above (pytest keeps the file's order)."""
    seconds = time.monotonic() - STARTED_AT[0]
    line = (
        f"schemathesis: {CASES['all']} cases ({CASES['positive']} positive, "
        f"{CASES['negative']} negative), {CASES['5xx']} with a 5xx response, in {seconds:.0f} s"
    )
    summary_lines.append(line)
    assert CASES["all"] >= MINIMUM_CASES, line
    assert CASES["5xx"] == 0, line
