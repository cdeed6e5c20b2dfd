"""The `dataload` command: the front door for users.

Each command is a thin shell over a function in the package; heavy imports happen inside the
command so that `dataload --help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum

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


async def _lake_connection():
    """A connection to the lake database (created first when it is the embedded server's)."""
    from dataload.lake import db
    from dataload.settings import get_settings

    settings = get_settings()
    try:
        if settings.uses_embedded_postgres:
            await db.ensure_database(settings)
        return await db.connect(settings)
    except db.DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


def _lake_error(exc: Exception) -> typer.Exit:
    """One line for a database error met by a lake command."""
    import asyncpg

    if isinstance(exc, typer.Exit):
        return exc
    missing = (
        asyncpg.UndefinedFunctionError,
        asyncpg.UndefinedTableError,
        asyncpg.InvalidSchemaNameError,
    )
    if isinstance(exc, missing):
        return fail("the lake schema is missing or old: run `dataload db init`")
    if isinstance(exc, asyncpg.PostgresError):
        hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
        return fail(f"{exc.message}{hint}")
    return fail(str(exc))


def _on_lake(work):
    """Run `await work(conn)` on a lake connection; any failure becomes one line and exit 1."""
    import asyncio

    async def run():
        conn = await _lake_connection()
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except Exception as exc:
        raise _lake_error(exc) from None


@db_app.command("init")
def db_init() -> None:
    """Apply pending schema migrations (idempotent; safe to run concurrently)."""
    from dataload.lake import init_lake

    setup = _on_lake(init_lake)
    if setup.migrations:
        typer.echo(f"applied {len(setup.migrations)} migrations: {', '.join(setup.migrations)}")
    else:
        typer.echo("the lake schema is up to date")
    if setup.seeded:
        domains = sorted({change.domain for change in setup.seeded})
        count = len(setup.seeded)
        typer.echo(f"added the shipped services to {', '.join(domains)} ({count} services)")


# --- services ------------------------------------------------------------------------------


@services_app.command("sync")
def services_sync(
    file: str = typer.Option(
        None, "--file", "-f", help="Services file (default: the one shipped with dataload)."
    ),
) -> None:
    """Make the curated service filters equal to the services file; re-derive what changed."""
    from pathlib import Path

    from dataload.lake.filters import read_services, sync_services

    async def sync(conn):
        services = read_services(Path(file) if file else None)
        return await sync_services(conn, services, source=file or "services file")

    changes = _on_lake(sync)
    for change in changes:
        if change.action != "unchanged":
            typer.echo(f"{change.action:9} {change.domain}.{change.service}")
    unchanged = sum(1 for c in changes if c.action == "unchanged")
    typer.echo(f"{len(changes) - unchanged} services changed, {unchanged} unchanged")


@services_app.command("list")
def services_list(domain: str = typer.Argument("person", help="term, course or person")) -> None:
    """List a domain's services with their paths and curated row counts."""
    from dataload.lake.filters import list_services

    services = _on_lake(lambda conn: list_services(conn, domain))
    for service in services:
        typer.echo(f"{service.name} ({service.rows} rows)")
        for path in service.paths:
            typer.echo(f"    {path}")


# --- history -------------------------------------------------------------------------------


@app.command("history")
def history(
    domain: str = typer.Argument(..., help="term, course or person"),
    key: list[str] = typer.Argument(  # noqa: B008
        ...,
        help="The key: a BUID for person; career and STRM for term; career, term, "
        "course id and session for course.",
    ),
) -> None:
    """Print every version of one record and what changed between consecutive versions."""
    from dataload.lake.history import diff, record_history

    versions = _on_lake(lambda conn: record_history(conn, domain, key))
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


# --- sandbox -------------------------------------------------------------------------------


@app.command("sandbox")
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8800, help="Port to listen on."),
    people: int = typer.Option(2000, help="People present on day 1."),
    seed: int = typer.Option(42, help="Seed of the synthetic university."),
    day: int = typer.Option(1, min=1, help="Day of the university's life to serve."),
    start_date: str = typer.Option("2026-05-01", help="Calendar date of day 1 (YYYY-MM-DD)."),
    latency_ms: str = typer.Option("0", help="Added latency: 50, 10-200 (uniform), ~50 (exp)."),
    fault_rate: float = typer.Option(0.0, help="Rate of 5xx answers on every endpoint."),
    hang_rate: float = typer.Option(0.0, help="Rate of requests that never answer."),
    malformed_rate: float = typer.Option(0.0, help="Rate of truncated JSON bodies."),
    html_login_rate: float = typer.Option(0.0, help="Rate of HTML login pages instead of JSON."),
    unauthorized_rate: float = typer.Option(0.0, help="Rate of 401 whatever the credentials."),
    error_body_rate: float = typer.Option(0.0, help="Rate of 200 answers with an error body."),
    fault: list[str] | None = typer.Option(  # noqa: B008 - typer's idiom for a repeatable option
        None, help="Per-endpoint fault, ENDPOINT:KIND=RATE (repeatable), e.g. sap:http_5xx=1."
    ),
    concurrency_limit: int = typer.Option(10, help="Concurrent calls per SnapLogic task."),
    retry_after_s: int = typer.Option(1, help="Retry-After of the 429 beyond the limit."),
    hang_s: float = typer.Option(600.0, help="How long a hung request hangs (then 504)."),
    empty_object_rate: float = typer.Option(0.01, help="Rate of {} in person results."),
    vds_page_size: int = typer.Option(200, help="Entries per VDS page."),
    alias_rate: float = typer.Option(0.2, help="Share of PeopleSoft rows with A. fields."),
    cs_env: str = typer.Option("test", help="The csEnv SnapLogic accepts (CS_ENV)."),
    courses_per_term: int = typer.Option(120, help="Courses in a regular term."),
    ps_user: str = typer.Option("sandbox", help="PeopleSoft user accepted."),
    ps_password: str = typer.Option("sandbox", help="PeopleSoft password accepted."),
    course_key: str = typer.Option("sandbox-course-key", help="SnapLogic course key accepted."),
    person_key: str = typer.Option("sandbox-person-key", help="SnapLogic person key accepted."),
    sap_key: str = typer.Option("sandbox-sap-key", help="SAP key accepted."),
    vds_user: str = typer.Option("sandbox", help="VDS user accepted."),
    vds_password: str = typer.Option("sandbox", help="VDS password accepted."),
) -> None:
    """Run the simulator of PeopleSoft, SnapLogic, SAP and VDS as a server."""
    from datetime import date

    from dataload.sandbox.config import Credentials, Faults, Latency, SandboxConfig
    from dataload.sandbox.server import environment, serve

    try:
        config = SandboxConfig(
            seed=seed,
            people=people,
            day=day,
            start_date=date.fromisoformat(start_date),
            courses_per_term=courses_per_term,
            latency=Latency.parse(latency_ms),
            faults=Faults(
                http_5xx_rate=fault_rate,
                hang_rate=hang_rate,
                malformed_json_rate=malformed_rate,
                html_login_rate=html_login_rate,
                unauthorized_rate=unauthorized_rate,
                error_body_rate=error_body_rate,
            ),
            snaplogic_concurrency_limit=concurrency_limit,
            retry_after_s=retry_after_s,
            hang_s=hang_s,
            alias_rate=alias_rate,
            cs_env=cs_env,
            empty_object_rate=empty_object_rate,
            vds_page_size=vds_page_size,
            credentials=Credentials(
                ps_user, ps_password, course_key, person_key, sap_key, vds_user, vds_password
            ),
        )
        for spec in fault or []:
            config.set_endpoint_fault(spec)
    except ValueError as exc:
        raise fail(f"sandbox not started: {exc}") from None
    base_url = f"http://{host}:{port}"
    typer.echo(f"sandbox on {base_url} (truth: {base_url}/_sandbox/truth); point dataload at it:")
    for name, value in environment(config, base_url).items():
        shown = "..." if name.endswith(("_PASS", "_KEY", "_PASSWORD")) else value
        typer.echo(f"  {name}={shown}")
    try:
        serve(config, host, port)
    except OSError as exc:
        raise fail(f"sandbox cannot listen on {host}:{port}: {exc}") from None


# --- run, serve, demo ----------------------------------------------------------------------


class FlowName(StrEnum):
    term = "term"
    course = "course"
    person = "person"


@app.command("run")
def run(
    flow: FlowName = typer.Argument(..., help="The flow to run: term, course or person."),  # noqa: B008
) -> None:
    """Run one flow now against the configured systems and database, and print its summary.

    Applies pending migrations first. Uses the Prefect API in PREFECT_API_URL, or a temporary
    local one when it is unset. Exits non-zero when the flow fails.
    """
    import asyncio
    import os

    # The temporary server Prefect starts without PREFECT_API_URL would try to send telemetry
    # and log an error where the network is closed, as it is on many campus servers.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from dataload.flows import FLOWS

    try:
        report = asyncio.run(FLOWS[flow.value]())
    except Exception as exc:
        raise fail(f"the {flow.value} flow failed: {exc}") from None
    typer.echo(report.headline())
    for section, counts in (("fetched", report.fetched), ("layers", report.layers)):
        typer.echo(f"  {section}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    services = ", ".join(f"{k} {v}" for k, v in report.services.items())
    typer.echo(f"  curated services: {services or 'none'}")


@app.command("serve")
def serve() -> None:
    """Serve the three daily deployments from this process until Ctrl-C.

    term-raw-daily 01:00, course-raw-daily 02:00, person-raw-daily 03:00 (America/New_York),
    one run at a time each. Point PREFECT_API_URL at a Prefect server (`prefect server start`
    gives one at http://127.0.0.1:4200/api) to keep the schedules and see them in the UI;
    without it they live in a temporary server that ends with this process.
    """
    import os

    from dataload.flows.deploy import serve_daily_loads

    if not os.environ.get("PREFECT_API_URL"):
        typer.secho(
            "note: PREFECT_API_URL is not set, so the schedules live in a temporary Prefect "
            "server that ends with this process; start one with `prefect server start` and "
            "set PREFECT_API_URL=http://127.0.0.1:4200/api to see them in the UI",
            fg=typer.colors.YELLOW,
            err=True,
        )
    serve_daily_loads()


@app.command("demo")
def demo(
    people: int = typer.Option(2000, min=10, help="People in the sandbox university."),
    day: int = typer.Option(1, min=1, help="Day of the university to load (2 shows changes)."),
    seed: int = typer.Option(42, help="Seed of the sandbox university."),
    keep: bool = typer.Option(
        False, "--keep", help="Leave the Prefect server and PostgreSQL running afterwards."
    ),
    stop: bool = typer.Option(False, "--stop", help="Stop what `demo --keep` left running."),
    port: int = typer.Option(4200, help="Port of the Prefect UI (another is chosen if taken)."),
    database: str = typer.Option("dataload_demo", help="The demo's own database."),
) -> None:
    """Run everything on this machine: PostgreSQL, a sandbox university, Prefect, the flows.

    Loads day 1 (or --day N) of a synthetic university through term, course and person,
    prints what each layer holds and where to look, and stops what it started (unless --keep).
    """
    from dataload.demo import DemoOptions, run_demo, stop_demo

    if stop:
        stop_demo()
        return
    options = DemoOptions(
        people=people, day=day, seed=seed, keep=keep, database=database, port=port
    )
    raise typer.Exit(run_demo(options))


if __name__ == "__main__":
    app()
