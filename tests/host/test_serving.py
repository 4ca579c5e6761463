"""How `serve` meets the network: the proxies it trusts for `X-Forwarded-*` come from the
settings, and the development mode's anonymous localhost is refused outside development."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import ValidationError

from host.app import create_app
from host.cli.processes import server_config
from host.settings import AuthSettings, DatabaseSettings, JobsSettings, Settings

WAIT_SECONDS = 20.0
FAR_CLIENT = {"X-Forwarded-For": "203.0.113.9"}


def development(tmp_path: Path, forwarded_allow_ips: str) -> Settings:
    return Settings(
        environment="dev",
        db=DatabaseSettings(url="sqlite://"),
        jobs=JobsSettings(backend="memory", sample_every_minute=False),
        auth=AuthSettings(allow_anonymous_localhost=True),
        http={"forwarded_allow_ips": forwarded_allow_ips},
        temp_directory=tmp_path / "tmp",
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """`serve`'s server on a free port of 127.0.0.1; its base URL."""
    config = server_config(create_app(settings), settings, host="127.0.0.1", port=0)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers only this flag)
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(
    ("trusted", "status"),
    [
        ("127.0.0.1", 401),  # the proxy is trusted: the caller is 203.0.113.9, not local
        ("192.0.2.1", 200),  # not trusted: its header is ignored, the caller is 127.0.0.1
    ],
)
async def test_the_trusted_proxies_are_the_configured_ones(
    tmp_path: Path, trusted: str, status: int
) -> None:
    async with serving(development(tmp_path, trusted)) as url, httpx.AsyncClient() as client:
        response = await client.get(f"{url}/api/stats", headers=FAR_CLIENT)

    assert response.status_code == status


def test_anonymous_localhost_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="development only"):
        Settings(environment="prod", auth=AuthSettings(allow_anonymous_localhost=True))

    assert Settings(environment="dev", auth=AuthSettings(allow_anonymous_localhost=True))
    assert Settings(environment="prod")
