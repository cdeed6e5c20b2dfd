"""`dataload services ...`: curated-layer service filters and consumer grants."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail
from dataload.cli.lake import on_lake

app = typer.Typer(
    help="Curated-layer services: their filters, and who may read them.", no_args_is_help=True
)


@app.command("sync")
def services_sync(
    file: str = typer.Option(
        None, "--file", "-f", help="Services file (default: the one shipped with dataload)."
    ),
) -> None:
    """Make the curated service filters equal to the services file; re-derive what changed."""
    from pathlib import Path

    from dataload.lake.access import list_grants
    from dataload.lake.filters import read_services, sync_services

    async def sync(conn):
        services = read_services(Path(file) if file else None)
        before = await list_grants(conn)
        changes = await sync_services(conn, services, source=file or "services file")
        after = {(g.domain, g.service, g.role) for g in await list_grants(conn)}
        return changes, [g for g in before if (g.domain, g.service, g.role) not in after]

    changes, dropped = on_lake(sync)
    for change in changes:
        if change.action != "unchanged":
            typer.echo(f"{change.action:9} {change.domain}.{change.service}")
    for grant in dropped:
        typer.echo(f"revoked   {grant.domain}.{grant.service} from {grant.role} (service removed)")
    unchanged = sum(1 for c in changes if c.action == "unchanged")
    typer.echo(f"{len(changes) - unchanged} services changed, {unchanged} unchanged")


@app.command("list")
def services_list(domain: str = typer.Argument("person", help="a domain of the lake")) -> None:
    """List a domain's services with their paths (a table's: columns and row filter) and
    curated row counts."""
    from dataload.lake.filters import list_services

    services = on_lake(lambda conn: list_services(conn, domain))
    for service in services:
        typer.echo(f"{service.name} ({service.rows} rows)")
        for path in service.paths:
            typer.echo(f"    {path}")


@app.command("grant")
def services_grant(
    domain: str = typer.Argument(..., help="term, course or person"),
    service: str = typer.Argument(..., help="The service the role may read."),
    role: str = typer.Option(..., "--role", help="The consumer's PostgreSQL role."),
    create: bool = typer.Option(False, "--create", help="Create the role (a login role)."),
    password_from_env: str = typer.Option(
        None,
        "--password-from-env",
        help="With --create: the environment variable holding the role's password.",
    ),
    allow_full: bool = typer.Option(
        False, "--allow-full", help="Allow granting the full service (every field)."
    ),
) -> None:
    """Let a PostgreSQL role read one service's curated rows, and nothing else of the lake."""
    import os

    from dataload.lake.access import AccessError, grant_service

    password = None
    if create:
        if not password_from_env:
            raise fail("--create needs --password-from-env VARIABLE (the new role's password)")
        password = os.environ.get(password_from_env)
        if not password:
            raise fail(f"environment variable {password_from_env} is not set or empty")
    elif password_from_env:
        raise fail("--password-from-env only applies with --create")

    async def grant(conn):
        try:
            return await grant_service(
                conn,
                domain,
                service,
                role,
                allow_full=allow_full,
                create_with_password=password,
            )
        except AccessError as exc:
            raise fail(str(exc)) from None

    added = on_lake(grant)
    if create:
        typer.echo(f"created login role {role} (password from ${password_from_env})")
    if service == "full":
        typer.secho(
            f"warning: {role} now reads whole {domain} records (the full service): every field, "
            "including those no other service shows",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if added:
        typer.echo(
            f"granted {domain}.{service} to {role}: it reads "
            f"{domain}_curated.{domain}_data_by_service WHERE service = '{service}'"
        )
    else:
        typer.echo(f"{role} already reads {domain}.{service}")


@app.command("revoke")
def services_revoke(
    domain: str = typer.Argument(..., help="term, course or person"),
    service: str = typer.Argument(..., help="The service to stop the role reading."),
    role: str = typer.Option(..., "--role", help="The consumer's PostgreSQL role."),
    terminate: bool = typer.Option(
        False,
        "--terminate",
        help="End the role's sessions first: an open transaction cannot hold the revoke up, "
        "nor a cursor outlive it.",
    ),
) -> None:
    """Stop a role reading one service's curated rows (from its next statement on)."""
    from dataload.lake.access import AccessError, revoke_service

    async def revoke(conn):
        try:
            await revoke_service(conn, domain, service, role, terminate=terminate)
        except AccessError as exc:
            raise fail(str(exc)) from None

    on_lake(revoke)
    typer.echo(f"revoked {domain}.{service} from {role}")


@app.command("access")
def services_access(
    domain: str = typer.Argument(None, help="Only this domain (default: all)."),
) -> None:
    """List who may read what: the consumer grants, then the roles that read whole records."""
    from dataload.lake.access import list_grants, unrestricted_readers

    async def read(conn):
        return await list_grants(conn, domain), await unrestricted_readers(conn)

    grants, everything = on_lake(read)
    for grant in grants:
        note = "" if grant.can_login else "  (a group role: cannot log in)"
        typer.echo(
            f"{grant.domain + '.' + grant.service:28} {grant.role:24} granted "
            f"{grant.granted_at:%Y-%m-%d %H:%M} by {grant.granted_by}{note}"
        )
    if not grants:
        typer.echo("no consumer grants" + (f" on {domain}" if domain else ""))
    typer.echo(
        "whole records, whatever the grants: " + ", ".join(f"{r} ({why})" for r, why in everything)
    )
