"""The service refuses to start when it is wired wrongly, and says what to fix."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from pytest import MonkeyPatch

import host.catalog as catalog
from application.jobs import Cron
from domain.maintenance import HeartbeatJobs
from host import checks
from host.api.deps import READ
from host.checks import StartupCheckFailed
from host.container import create_container
from host.registrar import RecurringDeclaration, recurring
from host.settings import DatabaseSettings, JobsSettings, Settings
from infrastructure.jobs.handlers import HandlerRegistry


class UnbuiltJobs:
    """A handler class registered without a factory."""

    def run(self) -> None:
        return None


def settings() -> Settings:
    return Settings(
        db=DatabaseSettings(url="sqlite://", persistence="memory"),
        jobs=JobsSettings(backend="memory"),
    )


def test_the_services_own_wiring_passes() -> None:
    create_container(settings())


def test_a_registered_handler_without_a_factory_is_refused(monkeypatch: MonkeyPatch) -> None:
    register = catalog.register_handlers

    def with_an_unbuilt_handler(registry: HandlerRegistry) -> None:
        register(registry)
        registry.register(UnbuiltJobs.run)

    monkeypatch.setattr(catalog, "register_handlers", with_an_unbuilt_handler)

    with pytest.raises(StartupCheckFailed, match="UnbuiltJobs is registered but has no factory"):
        create_container(settings())


def test_a_recurring_job_naming_an_unregistered_handler_is_refused(
    monkeypatch: MonkeyPatch,
) -> None:
    declare = catalog.recurring_declarations

    def with_an_unregistered_handler(s: Settings) -> list[RecurringDeclaration]:
        return [*declare(s), recurring("orphan", Cron("0 * * * *"), UnbuiltJobs.run)]

    monkeypatch.setattr(catalog, "recurring_declarations", with_an_unregistered_handler)

    with pytest.raises(StartupCheckFailed, match=r"recurring job 'orphan'.*UnbuiltJobs\.run"):
        create_container(settings())


def test_a_route_without_a_declared_scope_is_refused() -> None:
    router = APIRouter(prefix="/v1")

    @router.get("/guarded", dependencies=[READ])
    async def guarded() -> None:
        return None

    @router.post("/open")
    async def forgotten() -> None:
        return None

    with pytest.raises(StartupCheckFailed, match="route POST /v1/open declares no scope") as err:
        checks.check_routes_declare_a_scope([router])
    assert "guarded" not in str(err.value)


def test_every_mistake_is_listed_at_once() -> None:
    registry = HandlerRegistry()
    declarations = [
        recurring(name, Cron("0 * * * *"), HeartbeatJobs.beat) for name in ("first", "second")
    ]

    with pytest.raises(StartupCheckFailed) as err:
        checks.check_recurring_handlers_registered(registry, declarations)
    assert "'first'" in str(err.value) and "'second'" in str(err.value)
