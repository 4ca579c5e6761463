"""The console script: run the service's processes, and operate its jobs from a shell.

`serve | worker | scheduler | migrate` run processes. `jobs ...` and `recurring ...` work on
the job store of `APP_DB__URL` directly, through the same ports as the REST API.
`api-key create` makes an API key, `new-service` a new service from this template.
Exit codes: 0 done, 1 not found or refused, 2 bad input.
"""

from __future__ import annotations

import typer

from host.cli import jobs, keys, recurring
from host.cli.processes import migrate, scheduler, serve, worker
from host.cli.scaffold import new_service

__all__ = ["cli", "main"]

cli = typer.Typer(
    help="A job service: REST API, worker, scheduler, and commands to operate its jobs. "
    "Settings come from APP_* variables (docs/configuration.md).",
    no_args_is_help=True,
    # A crash's locals would include the settings, and with them the database password.
    pretty_exceptions_show_locals=False,
)
for process in (serve, worker, scheduler, migrate):
    cli.command()(process)
cli.add_typer(jobs.app, name="jobs")
cli.add_typer(recurring.app, name="recurring")
cli.add_typer(keys.app, name="api-key")
cli.command("new-service")(new_service)


def main() -> None:
    cli()
