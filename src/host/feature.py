"""A feature: one capability of the service declared in one module, collected by the host.

A feature module under `host/features/` defines a `Feature`: its container (repositories,
handler factories and use cases, built from the `core` ports every feature may use), the
handlers it allows with their options, its recurring jobs and its routes. Listing it in
`host.features.FEATURES` is the only registration: the container builds its providers, the
registry allows its handlers, the registrar declares its recurring jobs, the API serves its
routes, and the start-up checks (`host.checks`) cover all of it. See docs/adding-a-feature.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dependency_injector import containers, providers
from fastapi import APIRouter, Depends, Request

from host.registrar import RecurringDeclaration
from host.settings import Settings
from infrastructure.jobs.handlers import HandlerRegistry


def repository(
    persistence: providers.Provider[str],
    database: providers.Provider[Any],
    sql: type[Any],
    in_memory: type[Any],
) -> providers.Selector[Any]:
    """A repository port's adapter: in SQL (`APP_DB__PERSISTENCE=sql`) or in memory."""
    return providers.Selector(
        persistence,
        sql=providers.Singleton(sql, database),
        memory=providers.Singleton(in_memory),
    )


def _no_recurring(settings: Settings) -> list[RecurringDeclaration]:
    return []


@dataclass(frozen=True, kw_only=True)
class Feature:
    """What one feature adds to the service.

    Attributes:
        name: the feature's attribute on the container (`container.orders`).
        container: its providers. It declares `core = providers.DependenciesContainer()`,
            which the host fills with `settings`, `clock`, `email`, `persistence` (`sql` or
            `memory`), `database`, `jobs` and `unit_of_work`, and `handlers =
            providers.List(...)` of one `providers.Factory` per handler class.
        register_handlers: allows the feature's handlers, with their queue, retry and timeout.
        recurring: the recurring jobs it declares.
        router: its routes, under the business prefix (/v1); each declares its scope.
    """

    name: str
    container: type[containers.DeclarativeContainer]
    register_handlers: Callable[[HandlerRegistry], None]
    recurring: Callable[[Settings], list[RecurringDeclaration]] = field(default=_no_recurring)
    router: APIRouter | None = None


def use_case(feature: str, name: str) -> Any:
    """A route dependency: the use case `name` of the feature's container, built per call."""

    def provide(request: Request) -> object:
        return getattr(getattr(request.app.state.container, feature), name)()

    return Depends(provide)
