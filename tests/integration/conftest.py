from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.databases import migrated_engine

DIALECTS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh, migrated database of each kind."""
    with migrated_engine(request.param, tmp_path) as engine:
        yield engine
