"""Fixtures of the reliability tests: a fresh database per test (with the witness tables) and
`figures`, which reports each test's measurements as `name: value` lines in a terminal summary
section (CI runs without `-s`), in the JUnit properties and in `reliability-figures.txt` under
pytest's base temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.databases import migrated_engine
from tests.reliability.handlers import create_witness_tables

KINDS = ["sqlite", "postgresql", "mariadb"]

_FIGURES = pytest.StashKey[dict[str, list[str]]]()
_BASETEMP = pytest.StashKey[Path]()


@dataclass
class Database:
    kind: str
    engine: sa.Engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[Database]:
    """A new, migrated database of `kind` with the witness tables; dropped afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    with migrated_engine(kind, directory) as engine:
        create_witness_tables(engine)
        yield Database(kind, engine)


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path / "db") as db:
        yield db


class Figures:
    """The measurements of one test, as `name: value` lines."""

    def __init__(
        self, lines: list[str], record_property: Callable[[str, object], None], prefix: str = ""
    ) -> None:
        self._lines = lines
        self._record_property = record_property
        self._prefix = prefix

    def scoped(self, prefix: str) -> Figures:
        """Figures whose names start with `prefix` (a database, for instance)."""
        return Figures(self._lines, self._record_property, f"{self._prefix}{prefix}")

    def add(self, name: str, value: object) -> None:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        line = f"{self._prefix}{name}: {text}"
        self._lines.append(line)
        self._record_property(f"{self._prefix}{name}", text)
        print(line)  # noqa: T201 - shown with -s and in the captured output of a failure


@pytest.fixture
def figures(
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> Figures:
    request.config.stash[_BASETEMP] = tmp_path_factory.getbasetemp()
    everything = request.config.stash.setdefault(_FIGURES, {})
    lines = everything.setdefault(request.node.nodeid, [])
    return Figures(lines, record_property)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    everything = config.stash.get(_FIGURES, {})
    if not any(everything.values()):
        return
    terminalreporter.write_sep("=", "reliability figures")
    text = []
    for nodeid, lines in everything.items():
        text.append(nodeid)
        text.extend(f"    {line}" for line in lines)
    for line in text:
        terminalreporter.write_line(line)
    basetemp = config.stash.get(_BASETEMP, None)
    if basetemp is not None:
        path = basetemp / "reliability-figures.txt"
        path.write_text("\n".join(text) + "\n")
        terminalreporter.write_line(f"(also written to {path})")
