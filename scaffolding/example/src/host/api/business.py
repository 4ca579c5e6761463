"""The service's business API under /v1: each route parses, calls one use case, and shapes
its result. Domain errors become problem details in `host.api.problems`, never here.

Add your routes here or, better, in a feature module (docs/adding-a-feature.md of the
template): `host.api.install` adds every feature's router next to this one."""

from __future__ import annotations

from fastapi import APIRouter

PREFIX = "/v1"
"""Where the business routes live, apart from the jobs API (/api)."""

router = APIRouter(prefix=PREFIX, tags=["business"])
