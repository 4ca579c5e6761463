"""The scopes routes declare: `dependencies=[READ]` (or WRITE, ADMIN), and how to read a
route's declared scope back (start-up checks and the auth matrix use it)."""

from __future__ import annotations

from fastapi import Depends
from fastapi.routing import APIRoute

from host.auth import require
from host.settings import Scope

READ = Depends(require(Scope.READ))
WRITE = Depends(require(Scope.WRITE))
ADMIN = Depends(require(Scope.ADMIN))

_SCOPES = {
    READ.dependency: Scope.READ,
    WRITE.dependency: Scope.WRITE,
    ADMIN.dependency: Scope.ADMIN,
}


def declared_scope(route: APIRoute) -> Scope | None:
    """The scope a route needs, declared with `dependencies=[READ | WRITE | ADMIN]`; None
    when it declares none."""
    declared = [_SCOPES[d.call] for d in route.dependant.dependencies if d.call in _SCOPES]
    return max(declared, key=list(Scope).index) if declared else None
