"""The `dataload` command: the front door for users.

Each command is a thin shell over a function in the package; heavy imports happen inside the
command so that `dataload --help` stays fast. Every failure ends in one line saying what failed
and what to check, exit status 1; a traceback goes to the log file (`--verbose` shows it).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    help="Load terms, courses and people into the PostgreSQL data lake.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The lake's PostgreSQL: embedded server and migrations.", no_args_is_help=True
)
services_app = typer.Typer(
    help="Curated-layer services: their filters, and who may read them.", no_args_is_help=True
)
server_app = typer.Typer(
    help="The local Prefect server (API and UI) that run, serve and demo use.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(services_app, name="services")
app.add_typer(server_app, name="server")


class _Options:
    verbose = False


@app.callback()
def _global_options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show logs and tracebacks in the terminal as well."
    ),
) -> None:
    _Options.verbose = verbose


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def main() -> None:
    """The `dataload` entry point: any failure a command did not word itself becomes one line."""
    from dataload.settings import ConfigurationError

    try:
        app()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except Exception as exc:
        from dataload.logfile import log_failure

        if _Options.verbose:
            import traceback

            traceback.print_exception(exc)
        path = log_failure(" ".join(sys.argv[1:]), exc)
        text = " ".join(str(exc).split()) or type(exc).__name__
        where = f" (traceback in {path})" if path else ""
        typer.secho(f"error: {text}{where}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    finally:
        _forget_handled_interrupts()


def _forget_handled_interrupts() -> None:
    """Let an exit code a command chose after Ctrl-C stand.

    CPython remembers a KeyboardInterrupt that left code run by a string `exec` (dataclasses,
    among others, build their methods so while a module is imported), even when a caller caught it;
    under `python -m` it then ends the process by SIGINT instead of with the exit code. Every
    string `exec` forgets that at its start, so one that does nothing clears it. An interrupt that
    nothing caught still ends the process by SIGINT: it leaves `main` after this has run.
    """
    exec("pass")


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

    try:
        typer.echo(dsn(_lake_settings()))
    except DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


def _lake_settings():
    """The settings, with POSTGRES_PASS read from its Prefect Secret block when it names one."""
    import asyncio

    from dataload.settings import SECRET_BLOCK_PREFIX, get_settings

    settings = get_settings()
    if not settings.postgres_pass.get_secret_value().startswith(SECRET_BLOCK_PREFIX):
        return settings
    _quiet_prefect()
    _prefect_api(settings)
    from dataload.flows.secrets import resolve_secret_blocks

    return asyncio.run(resolve_secret_blocks(settings))


async def _lake_connection(settings):
    """A connection to the lake database (created first when it is the embedded server's)."""
    from dataload.lake import db

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

    settings = _lake_settings()

    async def run():
        conn = await _lake_connection(settings)
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
    from dataload.domains import DomainLoadError, all_domains
    from dataload.lake import init_lake

    try:
        declared = [spec.tables() for spec in all_domains().values()]
    except DomainLoadError as exc:
        raise fail(str(exc)) from None
    setup = _on_lake(lambda conn: init_lake(conn, declared))
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


# --- services ------------------------------------------------------------------------------


@services_app.command("sync")
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

    changes, dropped = _on_lake(sync)
    for change in changes:
        if change.action != "unchanged":
            typer.echo(f"{change.action:9} {change.domain}.{change.service}")
    for grant in dropped:
        typer.echo(f"revoked   {grant.domain}.{grant.service} from {grant.role} (service removed)")
    unchanged = sum(1 for c in changes if c.action == "unchanged")
    typer.echo(f"{len(changes) - unchanged} services changed, {unchanged} unchanged")


@services_app.command("list")
def services_list(domain: str = typer.Argument("person", help="a domain of the lake")) -> None:
    """List a domain's services with their paths (a table's: columns and row filter) and
    curated row counts."""
    from dataload.lake.filters import list_services

    services = _on_lake(lambda conn: list_services(conn, domain))
    for service in services:
        typer.echo(f"{service.name} ({service.rows} rows)")
        for path in service.paths:
            typer.echo(f"    {path}")


@services_app.command("grant")
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

    added = _on_lake(grant)
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


@services_app.command("revoke")
def services_revoke(
    domain: str = typer.Argument(..., help="term, course or person"),
    service: str = typer.Argument(..., help="The service to stop the role reading."),
    role: str = typer.Option(..., "--role", help="The consumer's PostgreSQL role."),
) -> None:
    """Stop a role reading one service's curated rows (from its next statement on)."""
    from dataload.lake.access import AccessError, revoke_service

    async def revoke(conn):
        try:
            await revoke_service(conn, domain, service, role)
        except AccessError as exc:
            raise fail(str(exc)) from None

    _on_lake(revoke)
    typer.echo(f"revoked {domain}.{service} from {role}")


@services_app.command("access")
def services_access(
    domain: str = typer.Argument(None, help="Only this domain (default: all)."),
) -> None:
    """List who may read what: the consumer grants, then the roles that read whole records."""
    from dataload.lake.access import list_grants, unrestricted_readers

    async def read(conn):
        return await list_grants(conn, domain), await unrestricted_readers(conn)

    grants, everything = _on_lake(read)
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


# --- history -------------------------------------------------------------------------------


@app.command("history")
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
    latency_ms: str = typer.Option("0", help="Ms to each answer: 50, 10-200 (uniform), ~50 (exp)."),
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
    left_out_rate: float = typer.Option(
        0.0, help="Rate, per request and person, of people left out of a person answer."
    ),
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
    env_file: str = typer.Option(
        None, "--env-file", help="Write the variables that point dataload at it to this file."
    ),
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
            left_out_rate=left_out_rate,
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
    # The sandbox's credentials are its own command-line defaults, not secrets: shown whole,
    # so that they can be pasted.
    variables = environment(config, base_url)
    typer.echo(f"sandbox on {base_url} (truth: {base_url}/_sandbox/truth); point dataload at it:")
    if env_file:
        from pathlib import Path

        lines = "".join(f"{name}={value}\n" for name, value in variables.items())
        Path(env_file).write_text(f"# dataload sandbox on {base_url}\n{lines}")
        typer.echo(f"  wrote {env_file} (copy it to .env in the directory you run dataload in)")
    else:
        import shlex

        for name, value in variables.items():
            typer.echo(f"  export {name}={shlex.quote(value)}")
    try:
        serve(config, host, port)
    except OSError as exc:
        raise fail(f"sandbox cannot listen on {host}:{port}: {exc}") from None


# --- run, serve, demo ----------------------------------------------------------------------


def _prefect_api(settings) -> str:
    """PREFECT_API_URL, or the managed local server (started on demand); set before Prefect is
    imported, so that no command ever starts Prefect's ephemeral server."""
    from dataload.prefect_server import PrefectServerError, use_prefect_api

    def launching(port: int) -> None:
        typer.echo(
            f"starting the local Prefect server on 127.0.0.1:{port} "
            "(once; later commands reuse it, `dataload server stop` stops it)",
            err=True,
        )

    try:
        api_url, _ = use_prefect_api(settings.home, on_launch=launching)
    except PrefectServerError as exc:
        raise fail(str(exc)) from None
    return api_url


def _quiet_prefect() -> None:
    """Prefect's console logs go to the log file (unless --verbose): the terminal shows our
    progress and one line per outcome. Called before Prefect is first imported."""
    import os

    if not _Options.verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _check_database(settings) -> None:
    """Connect once before anything starts: a wrong host or password is told in a second."""
    import asyncio

    from dataload.lake import db
    from dataload.settings import SECRET_BLOCK_PREFIX

    if settings.postgres_pass.get_secret_value().startswith(SECRET_BLOCK_PREFIX):
        return  # read from Prefect, which is not started yet: the run will tell

    async def probe() -> None:
        await (await db.connect(settings, database="postgres", connect_timeout=5)).close()

    try:
        asyncio.run(probe())
    except db.DatabaseUnavailable as exc:
        raise fail(str(exc)) from None


@app.command("run")
def run(
    domain: str = typer.Argument(..., help="The domain to load (see `dataload domains`)."),
    param: list[str] | None = typer.Option(  # noqa: B008 - typer's idiom for a repeatable option
        None, "--param", "-p", help="A parameter of the domain's source, name=value (repeatable)."
    ),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Reload everything (domains that allow it)."
    ),
    allow_mass_delete: bool = typer.Option(
        False,
        "--allow-mass-delete",
        help="Delete whatever share of the live records left the source "
        "(beyond DATALOAD_MAX_DELETE_SHARE); for the day they really did.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Resume the domain's last run if it failed or was killed (within "
        "DATALOAD_RESUME_WINDOW_H): what it loaded is not asked for again (person).",
    ),
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=1,
        help="Split the run into N flow runs on the work pool (DATALOAD_WORK_POOL, or local "
        "process workers started for it); default DATALOAD_PERSON_SHARDS (person).",
    ),
) -> None:
    """Load one domain now against the configured systems and database; print its summary.

    Checks the request and the configuration first and applies pending migrations. Uses the
    Prefect API in PREFECT_API_URL, or the local Prefect server (`dataload server`), started
    when needed. Exits 1 unless the run went as it should: failed, partial (stored what came,
    deleted nobody) and guarded (would have deleted too many, deleted nobody) runs say why in
    their summary.
    """
    import asyncio

    from dataload.domains import DomainLoadError, get_domain, parse_param_options
    from dataload.settings import FLOW_VARIABLES, check_configuration, load_settings

    try:  # a request the domain cannot take is refused before anything starts
        params = parse_param_options(param or [])
        get_domain(domain).check_request(params, full_refresh=full_refresh)
    except (LookupError, DomainLoadError, ValueError) as exc:
        raise fail(str(exc)) from None
    settings = load_settings()
    check_configuration(settings, (domain,) if domain in FLOW_VARIABLES else ())
    _check_database(settings)
    _quiet_prefect()
    _prefect_api(settings)
    from dataload.flows.alerts import flow_run_page
    from dataload.flows.domain import check_options, run_domain
    from dataload.flows.progress import terminal_progress
    from dataload.flows.states import run_report
    from dataload.logfile import attach_log_file

    log = attach_log_file()

    async def run_flow():
        if allow_mass_delete:
            typer.secho(
                f"warning: the mass-deletion guard is off for this {domain} run",
                fg=typer.colors.YELLOW,
                err=True,
            )
        state = await run_domain(
            domain,
            params,
            full_refresh=full_refresh,
            allow_mass_delete=allow_mass_delete,
            return_state=True,
            **options,
        )
        return state, await run_report(state)

    options = {
        name: value
        for name, value in {"resume": resume or None, "shards": shards}.items()
        if value is not None
    }
    try:
        check_options(domain, options)
    except ValueError as exc:
        raise fail(str(exc)) from None
    with terminal_progress():
        state, report = asyncio.run(run_flow())
    page = flow_run_page(state.state_details.flow_run_id)
    if isinstance(report, BaseException) or report is None:
        reason = " ".join(str(report).split()) if report else state.message
        raise fail(f"the {domain} flow failed: {reason} (run: {page}; log: {log})")
    _print_summary(report, page)
    if not report.succeeded:
        raise typer.Exit(1)


def _print_summary(report, page: str | None) -> None:
    """The run's headline and counts, wrapped to the terminal (80 columns when piped)."""
    import shutil
    import textwrap

    width = shutil.get_terminal_size(fallback=(80, 24)).columns
    services = ", ".join(f"{k} {v}" for k, v in report.services.items()) or "none"
    lines = [
        report.headline(),
        "  fetched: " + ", ".join(f"{k} {v}" for k, v in report.fetched.items()),
        "  layers: " + ", ".join(f"{k} {v}" for k, v in report.layers.items()),
        f"  curated services: {services}",
        f"  run: {page}",
    ]
    for line in lines:
        typer.echo(
            textwrap.fill(
                line,
                width=width,
                subsequent_indent="    ",
                break_on_hyphens=False,
                break_long_words=False,
            )
        )


@app.command("domains")
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


@app.command("serve")
def serve() -> None:
    """Serve the three daily deployments from this process until Ctrl-C.

    term-raw-daily 01:00, course-raw-daily 02:00, person-raw-daily 03:00 (America/New_York),
    one run at a time each, on the Prefect server in PREFECT_API_URL or the local one
    (`dataload server`, started when needed). Deployments paused by an earlier Ctrl-C are
    resumed.
    """
    from dataload.settings import (
        FLOW_VARIABLES,
        ConfigurationError,
        check_configuration,
        load_settings,
    )

    settings = load_settings()
    check_configuration(settings)
    try:
        check_configuration(settings, tuple(FLOW_VARIABLES))
    except ConfigurationError as exc:
        typer.secho(f"warning: runs will fail until this is fixed: {exc}", fg="yellow", err=True)
    _quiet_prefect()
    api_url = _prefect_api(settings)
    from dataload.flows.deploy import runner_deployments, serve_deployments
    from dataload.logfile import attach_log_file

    log = attach_log_file()
    ui = api_url.removesuffix("/api")
    deployments = runner_deployments()
    names = ", ".join(deployment.name for deployment in deployments)
    typer.echo(f"serving {names} on {ui} (log: {log})")
    typer.echo("Ctrl-C stops serving and pauses their schedules; `dataload serve` resumes them")
    try:
        serve_deployments(deployments)
    finally:
        typer.echo(
            f"stopped: {names} are paused on {ui} until the next `dataload serve` "
            "(or resume them in the UI)"
        )


# --- server --------------------------------------------------------------------------------


def _managed_server():
    from dataload.prefect_server import ManagedPrefectServer
    from dataload.settings import get_settings

    return ManagedPrefectServer.of(get_settings().home)


@server_app.command("start")
def server_start(
    port: int = typer.Option(None, help="Port for a first start (default 4200, or a free one)."),
) -> None:
    """Start the local Prefect server in the background (later commands reuse it)."""
    from dataload.prefect_server import PrefectServerError

    server = _managed_server()

    def launching(chosen: int) -> None:
        typer.echo(f"starting the Prefect server on 127.0.0.1:{chosen} (15-30 s the first time)")

    try:
        status, started = server.start(port=port, on_launch=launching)
    except PrefectServerError as exc:
        raise fail(str(exc)) from None
    verb = "started" if started else "already running"
    typer.echo(f"Prefect server {verb}: UI {status.url}, API {status.api_url} (pid {status.pid})")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server (its runs and settings are kept)."""
    stopped = _managed_server().stop()
    typer.echo("Prefect server stopped" if stopped else "Prefect server was not running")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local Prefect server runs, and where (exit 1 when it does not)."""
    import os

    status = _managed_server().status()
    external = os.environ.get("PREFECT_API_URL")
    if external:
        typer.echo(f"note: PREFECT_API_URL is set ({external}): commands use that server")
    if status.running:
        health = "answering" if status.healthy else "not answering yet"
        typer.echo(f"running ({health}): pid {status.pid}, UI {status.url}, state in {status.home}")
        return
    typer.echo(f"not running; state in {status.home}")
    raise typer.Exit(1)


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
    examples: bool = typer.Option(
        False, "--examples", help="Load the example domains (seeds 001-004) instead."
    ),
) -> None:
    """Run everything on this machine: PostgreSQL, a sandbox university, Prefect, the flows.

    Loads day 1 (or --day N) of a synthetic university through term, course and person,
    prints what each layer holds and where to look, and stops what it started (unless --keep).
    With --examples, loads every example domain (exchange rates, currencies, products, jokes,
    taxi trips, Sage transactions) from the sandbox's simulators instead.
    """
    from dataload.demo import DemoOptions, run_demo, stop_demo

    if stop:
        stop_demo()
        return
    options = DemoOptions(
        people=people,
        day=day,
        seed=seed,
        keep=keep,
        database=database,
        port=port,
        examples=examples,
    )
    raise typer.Exit(run_demo(options))


if __name__ == "__main__":
    main()
