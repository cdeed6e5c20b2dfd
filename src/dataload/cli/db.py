"""`dataload db ...`: the embedded PostgreSQL and the lake's migrations."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail, lake_error
from dataload.cli.lake import lake_settings

app = typer.Typer(
    help="The lake's PostgreSQL: embedded server and migrations.", no_args_is_help=True
)


def embedded_or_exit():
    from dataload.lake.db import embedded_server
    from dataload.settings import get_settings

    settings = get_settings()
    if settings.postgres_host:
        raise fail(
            f"POSTGRES_HOST is set ({settings.postgres_host}): the embedded server is not used; "
            "unset POSTGRES_HOST to use it"
        )
    return embedded_server(settings)


@app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (reused by later commands until `db stop`)."""
    from dataload.lake.server import EmbeddedPostgresError

    server = embedded_or_exit()
    before = server.status()
    try:
        status = server.start()
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    verb = "already running" if before.running else "started"
    if before.stale_pid_file:
        verb += " (replaced a stale pid file from a server that had died)"
    typer.echo(f"embedded PostgreSQL {verb}: {status.url()} (data in {status.data_dir})")


@app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from dataload.lake.server import EmbeddedPostgresError

    try:
        stopped = embedded_or_exit().stop()
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@app.command("status")
def db_status() -> None:
    """Say whether the embedded PostgreSQL runs, and where (exit 1 when it does not)."""
    status = embedded_or_exit().status()
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


@app.command("url")
def db_url() -> None:
    """Print the lake's connection URL (for psql; starts the embedded server if needed)."""
    from dataload.lake.db import DatabaseUnavailable, dsn

    try:
        typer.echo(dsn(lake_settings()))
    except DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


@app.command("init")
def db_init(
    loader_password_from_env: str = typer.Option(
        None,
        "--loader-password-from-env",
        metavar="VARIABLE",
        help="Set the loader role's password from this environment variable (another server; "
        "the embedded one keeps a generated one).",
    ),
) -> None:
    """Create the lake's owner and loader roles, apply pending migrations as the owner, grant the
    loader what a load needs (idempotent; safe to run concurrently)."""
    import asyncio
    import os

    from dataload.domains import DomainLoadError, all_domains
    from dataload.lake.db import prepare_lake

    try:
        declared = [spec.tables() for spec in all_domains().values()]
    except DomainLoadError as exc:
        raise fail(str(exc)) from None
    settings = lake_settings()
    password = None
    if loader_password_from_env:
        password = os.environ.get(loader_password_from_env)
        if not password:
            raise fail(f"{loader_password_from_env} is not set: it holds the loader's password")
    try:
        setup = asyncio.run(prepare_lake(settings, declared, loader_password=password))
    except Exception as exc:
        raise lake_error(exc) from None
    for done in setup.roles:
        typer.echo(done)
    if setup.adopted:
        typer.echo(f"gave {setup.adopted} objects of the lake to {settings.owner_role}")
    if setup.migrations:
        typer.echo(f"applied {len(setup.migrations)} migrations: {', '.join(setup.migrations)}")
    else:
        typer.echo("the lake schema is up to date")
    if setup.seeded:
        domains = sorted({change.domain for change in setup.seeded})
        count = len(setup.seeded)
        typer.echo(f"added the shipped services to {', '.join(domains)} ({count} services)")
    if setup.installed:
        typer.echo(f"installed the domains {', '.join(setup.installed)}")
