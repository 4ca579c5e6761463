"""Every business table, for Alembic: the modules of `infrastructure.persistence` declare
their tables on `metadata` when imported, so all of them are imported here (a new feature's
module is found without being listed)."""

from __future__ import annotations

import importlib
import pkgutil

import infrastructure.persistence
from infrastructure.persistence.sql.metadata import metadata

FEATURES = [
    importlib.import_module(module.name)
    for module in pkgutil.walk_packages(
        infrastructure.persistence.__path__, f"{infrastructure.persistence.__name__}."
    )
    if ".migrations" not in module.name
]

__all__ = ["FEATURES", "metadata"]
