"""Start-up checks: wiring mistakes that type checking and unit tests let through, refused
before the service starts, each with a message that says what to fix.

- a registered handler whose class has no factory in the container (it would fail each time
  it runs);
- a recurring job naming a handler that is not registered (its ticks would be refused);
- a route of the business API that declares no scope (it would be open to anyone).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from fastapi import APIRouter
from fastapi.routing import APIRoute

from application.jobs import HandlerNotRegistered
from host.registrar import RecurringDeclaration
from host.scopes import declared_scope
from infrastructure.jobs.handlers import HandlerRegistry


class StartupCheckFailed(RuntimeError):
    """The service is wired wrongly; the message lists every mistake found."""


def check_handlers_have_factories(registry: HandlerRegistry, built: Collection[type]) -> None:
    """Raises StartupCheckFailed for each registered handler class without a factory."""
    missing = sorted(cls.__qualname__ for cls in registry.classes() - set(built))
    _refuse(
        f"handler class {name} is registered but has no factory: add "
        f"`providers.Factory({name}, ...)` to the feature's handler factories"
        for name in missing
    )


def check_recurring_handlers_registered(
    registry: HandlerRegistry, declarations: Sequence[RecurringDeclaration]
) -> None:
    """Raises StartupCheckFailed for each recurring job whose handler is not registered."""
    problems = []
    for declaration in declarations:
        try:
            registry.resolve(declaration.handler)
        except HandlerNotRegistered as exc:
            problems.append(f"recurring job {declaration.id!r}: {exc}; register it first")
    _refuse(problems)


def check_routes_declare_a_scope(routers: Iterable[APIRouter]) -> None:
    """Raises StartupCheckFailed for each route that declares no scope."""
    _refuse(
        f"route {','.join(sorted(route.methods or ()))} {route.path} declares no scope: add "
        "`dependencies=[READ]` (or WRITE, ADMIN) from host.api.deps"
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and declared_scope(route) is None
    )


def _refuse(problems: Iterable[str]) -> None:
    found = list(problems)
    if found:
        raise StartupCheckFailed("the service cannot start:\n- " + "\n- ".join(found))
