"""`api-key ...`: make API keys for the REST API."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

import typer

from host.settings import ApiKey, Scope

app = typer.Typer(help="Make API keys for the REST API.", no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Option(help="Who holds the key (shown in logs).")],
    scope: Annotated[
        Scope, typer.Option(help="What the key may do: read, write (and read), or admin (all).")
    ] = Scope.READ,
) -> None:
    """Make a random API key; prints it once, and the entry to add to APP_AUTH__API_KEYS.

    Only the key's SHA-256 is configured; the key itself is stored nowhere.
    """
    if not name.strip():
        raise typer.BadParameter("must not be empty", param_hint="'--name'")
    key = secrets.token_urlsafe(32)
    entry = ApiKey(name=name, sha256=hashlib.sha256(key.encode()).hexdigest(), scope=scope)
    typer.echo(f"API key (shown once, send it as the X-API-Key header): {key}")
    typer.echo(f"add to the JSON list in APP_AUTH__API_KEYS: {entry.model_dump_json()}")
