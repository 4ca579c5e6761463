"""A service generated once per session from this checkout's files (the template), by the
same copier call `new-service` makes. The checkout's uncommitted edits count too: the files
are copied into a fixture repository and committed there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from host.cli.scaffold import TEMPLATE_ROOT, copy, first_commit

SERVICE = "billing"
ANSWERS: dict[str, Any] = {
    "service_name": SERVICE,
    "project_name": "billing-service",
    "description": "Bills customers.",
    "backend": "sqlite",
    "include_dashboard": True,
    "include_sample": False,
}
FIXTURE_IDENTITY = ("-c", "user.name=test", "-c", "user.email=test@localhost")
LEFT_OUT = ("bench",)
"""Large folders a service never carries, not worth copying into the fixture repository."""


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *FIXTURE_IDENTITY, *args], cwd=folder, check=True, capture_output=True, text=True
    )
    return done.stdout


def template_files() -> list[str]:
    """The checkout's files, as git knows them (tracked or new, not ignored), that still exist."""
    listed = git(TEMPLATE_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [
        name
        for name in listed.split("\0")
        if name and name.split("/")[0] not in LEFT_OUT and (TEMPLATE_ROOT / name).is_file()
    ]


def make_template_repository(folder: Path) -> Path:
    for name in template_files():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / name, target)
    git(folder, "init", "--quiet")
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--message", "template")
    return folder


def generate(template: Path, dest: Path, **answers: Any) -> Path:
    copy(str(template), dest, {**ANSWERS, **answers}, "HEAD")
    first_commit(dest)
    return dest


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_repository(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def service(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(template, tmp_path_factory.mktemp("generated") / SERVICE)
