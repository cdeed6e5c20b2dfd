"""The `dataload` command: the front door for users.

Each command is a thin shell over a function in the package; heavy imports happen inside the
command so that `dataload --help` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Load terms, courses and people into the PostgreSQL data lake.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The lake's PostgreSQL: embedded server and migrations.", no_args_is_help=True
)
services_app = typer.Typer(help="Curated-layer service filters.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(services_app, name="services")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


# --- db ------------------------------------------------------------------------------------


def _embedded_or_exit():
    from dataload.lake.db import embedded_server
    from dataload.settings import get_settings

    settings = get_settings()
    if settings.postgres_host:
        raise fail(
            f"POSTGRES_HOST is set ({settings.postgres_host}): the embedded server is not used; "
            "unset POSTGRES_HOST to use it"
        )
    return embedded_server(settings)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (reused by later commands until `db stop`)."""
    from dataload.lake.server import EmbeddedPostgresError

    server = _embedded_or_exit()
    before = server.status()
    try:
        status = server.start()
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    verb = "already running" if before.running else "started"
    if before.stale_pid_file:
        verb += " (replaced a stale pid file from a server that had died)"
    typer.echo(f"embedded PostgreSQL {verb}: {status.url()} (data in {status.data_dir})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from dataload.lake.server import EmbeddedPostgresError

    try:
        stopped = _embedded_or_exit().stop()
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded PostgreSQL runs, and where (exit 1 when it does not)."""
    status = _embedded_or_exit().status()
    if status.running:
        typer.echo(f"running: pid {status.pid}, {status.url()}, data in {status.data_dir}")
        return
    note = (
        " (stale pid file from a server that died; `db start` replaces it)"
        if status.stale_pid_file
        else ""
    )
    typer.echo(f"not running{note}; data in {status.data_dir}")
    raise typer.Exit(1)


@db_app.command("url")
def db_url() -> None:
    """Print the lake's connection URL (for psql; starts the embedded server if needed)."""
    from dataload.lake.db import DatabaseUnavailable, dsn
    from dataload.settings import get_settings

    try:
        typer.echo(dsn(get_settings()))
    except DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


# --- services ------------------------------------------------------------------------------

# --- history -------------------------------------------------------------------------------

# --- sandbox -------------------------------------------------------------------------------

# --- run, serve, demo ----------------------------------------------------------------------


if __name__ == "__main__":
    app()
