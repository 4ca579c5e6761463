"""`new-service NAME --dest DIR`: a new microservice made from this template with copier, in a
new git repository, ready for `copier update` when the template changes (docs/new-service.md)."""

from __future__ import annotations

import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

TEMPLATE_ROOT = Path(__file__).resolve().parents[3]
"""This checkout, when the command runs from one (`pip install -e .`): it is the template."""

FIRST_COMMIT = "A new service, generated from the template (docs/new-service.md)"
FALLBACK_IDENTITY = ("-c", "user.name=new-service", "-c", "user.email=new-service@localhost")


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    DRAMATIQ = "dramatiq"


def new_service(
    name: Annotated[str, typer.Argument(help="The service's name, e.g. billing.")],
    dest: Annotated[Path, typer.Option(help="The new repository's folder (must not exist).")],
    package: Annotated[
        str | None, typer.Option(help="The Python project name (default: NAME).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="One line: what it does.")] = None,
    backend: Annotated[Backend, typer.Option(help="The default job backend.")] = Backend.SQLITE,
    dashboard: Annotated[bool, typer.Option(help="Serve the dashboard by default.")] = True,
    sample: Annotated[
        bool, typer.Option(help="Keep the sample business instead of the small example.")
    ] = False,
    template: Annotated[
        str | None, typer.Option(help="The template (a folder or git URL); default: this one.")
    ] = None,
    ref: Annotated[str, typer.Option(help="The template's git revision.")] = "HEAD",
) -> None:
    """Make a new microservice from this template, in a new git repository with a first
    commit; later template changes come in with `copier update --trust`."""
    if dest.exists() and any(dest.iterdir()):
        raise typer.BadParameter("must be a new or empty folder", param_hint="'--dest'")
    answers: dict[str, Any] = {
        "service_name": name,
        "project_name": package or name,
        "backend": backend.value,
        "include_dashboard": dashboard,
        "include_sample": sample,
    }
    if description is not None:
        answers["description"] = description
    copy(template or str(default_template()), dest, answers, ref)
    first_commit(dest)
    typer.echo(f"{name}: made in {dest}; next: cd {dest} && make test")


def default_template() -> Path:
    if not (TEMPLATE_ROOT / "copier.yml").is_file():
        raise typer.BadParameter(
            "this installation is not a template checkout", param_hint="'--template'"
        )
    return TEMPLATE_ROOT


def copy(template: str, dest: Path, answers: dict[str, Any], ref: str) -> None:
    try:
        from copier import run_copy  # the `scaffold` extra: not in the service's image
    except ImportError as missing:
        raise typer.BadParameter(
            "needs copier: pip install -e '.[scaffold]'", param_hint="new-service"
        ) from missing
    run_copy(template, dest, data=answers, vcs_ref=ref, defaults=True, unsafe=True, quiet=True)


def first_commit(dest: Path) -> None:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True, text=True)

    git("init", "--quiet")
    git("add", "--all")
    has_identity = subprocess.run(
        ["git", "config", "user.email"], cwd=dest, capture_output=True, text=True
    ).stdout.strip()
    identity = () if has_identity else FALLBACK_IDENTITY
    git(*identity, "commit", "--quiet", "--message", FIRST_COMMIT)
