"""`dataload domains` and `dataload history`: what the lake declares and holds."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail
from dataload.cli.lake import on_lake


def domains() -> None:
    """List the registered domains: keys, listing, schedules, source and services."""
    from dataload.domains import DomainLoadError, all_domains
    from dataload.lake.filters import ServiceFilterError, read_services

    try:
        found = all_domains()
        shipped = read_services()
    except (DomainLoadError, ServiceFilterError) as exc:
        raise fail(str(exc)) from None
    for spec in found.values():
        keys = ", ".join(
            key.column if key.type == "text" else f"{key.column} ({key.type})" for key in spec.keys
        )
        schedules = "; ".join(f"{s.name}: {s.when}" for s in spec.schedules) or "none"
        services = ["full", *spec.services, *shipped.get(spec.name, {})]
        if spec.table is not None:  # typed columns; services are column sets, no `full`
            table = spec.table
            keys = ", ".join(table.key) or f"none: facts, a version per {table.scope}"
            services = list(table.services)
        typer.secho(f"{spec.name}", bold=True, nl=False)
        typer.echo(f"  {spec.description}")
        if spec.table is not None:
            typer.echo(f"    table:     {len(spec.table.columns)} typed columns")
        typer.echo(f"    keys:      {keys}")
        typer.echo(f"    listing:   {spec.listing.value}")
        typer.echo(f"    schedule:  {schedules}")
        typer.echo(f"    source:    {spec.source_label}")
        typer.echo(f"    services:  {', '.join(dict.fromkeys(services))}")
        if spec.never_store:
            typer.echo(f"    never stored: {', '.join(spec.never_store)}")


def history(
    domain: str = typer.Argument(..., help="a domain of the lake (dataload domains)"),
    key: list[str] = typer.Argument(  # noqa: B008
        ...,
        help="The key: a BUID for person; career and STRM for term; career, term, "
        "course id and session for course; the month (2024-01) for taxi_trips.",
    ),
) -> None:
    """Print every version of one record and what changed between consecutive versions."""
    from dataload.lake.history import diff, record_history

    versions = on_lake(lambda conn: record_history(conn, domain, key))
    if not versions:
        raise fail(f"no {domain} record with key {' '.join(key)} in the lake")
    previous = None
    for number, version in enumerate(versions, 1):
        until = (
            version.valid_to.isoformat(sep=" ", timespec="seconds") if version.valid_to else "now"
        )
        state = "deleted" if version.deleted else "live"
        typer.echo(
            f"version {number}: {state}, "
            f"{version.valid_from.isoformat(sep=' ', timespec='seconds')} .. {until} "
            f"(run {version.run_id})"
        )
        if previous is None:
            if version.data is not None:
                typer.echo(f"  first version, {len(version.data)} top-level fields")
        elif version.deleted:
            typer.echo("  deleted: absent from a complete snapshot of the source")
        else:
            for line in diff(previous, version.data):
                typer.echo(f"  {line}")
        previous = version.data if version.data is not None else previous
