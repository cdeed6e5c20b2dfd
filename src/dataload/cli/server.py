"""`dataload server ...`: the local Prefect server."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail

app = typer.Typer(
    help="The local Prefect server (API and UI) that run, serve and demo use.",
    no_args_is_help=True,
)


def managed_server():
    from dataload.prefect_server import ManagedPrefectServer
    from dataload.settings import get_settings

    settings = get_settings()
    return ManagedPrefectServer.of(settings.home, settings.ui_url)


@app.command("start")
def server_start(
    port: int = typer.Option(None, help="Port for a first start (default 4200, or a free one)."),
) -> None:
    """Start the local Prefect server in the background (later commands reuse it)."""
    from dataload.prefect_server import PrefectServerError

    server = managed_server()

    def launching(chosen: int) -> None:
        typer.echo(f"starting the Prefect server on 127.0.0.1:{chosen} (15-30 s the first time)")

    try:
        status, started = server.start(port=port, on_launch=launching)
    except PrefectServerError as exc:
        raise fail(str(exc)) from None
    verb = "started" if started else "already running"
    typer.echo(f"Prefect server {verb}: UI {status.url}, API {status.api_url} (pid {status.pid})")


@app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server (its runs and settings are kept)."""
    stopped = managed_server().stop()
    typer.echo("Prefect server stopped" if stopped else "Prefect server was not running")


@app.command("status")
def server_status() -> None:
    """Say whether the local Prefect server runs, and where (exit 1 when it does not)."""
    import os

    status = managed_server().status()
    external = os.environ.get("PREFECT_API_URL")
    if external:
        typer.echo(f"note: PREFECT_API_URL is set ({external}): commands use that server")
    if status.running:
        health = "answering" if status.healthy else "not answering yet"
        typer.echo(f"running ({health}): pid {status.pid}, UI {status.url}, state in {status.home}")
        return
    typer.echo(f"not running; state in {status.home}")
    raise typer.Exit(1)
