"""The service's jobs: which handlers may run (the allow-list), how the container builds them,
and which recurring jobs the service declares."""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from host.registrar import RecurringDeclaration
from host.settings import Settings
from infrastructure.jobs.engine.handlers import HandlerRegistry


class Adapters(containers.DeclarativeContainer):
    """Domain ports and their adapters."""


def handler_factories(adapters: Any) -> list[providers.Factory[Any]]:
    return []


def register_handlers(registry: HandlerRegistry) -> None:
    return None


def recurring_declarations(settings: Settings) -> list[RecurringDeclaration]:
    return []
