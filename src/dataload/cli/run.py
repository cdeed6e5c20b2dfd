"""`dataload run`: one domain now, its summary, and an exit status that says how it went."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from dataload.cli.errors import fail
from dataload.cli.prefect import prefect_api, quiet_prefect


def check_database(settings) -> None:
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
    check_database(settings)
    warn_of_unreachable_alerts(settings)
    quiet_prefect()
    prefect_api(settings)
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
    with terminal_progress(), unsent_alerts() as unsent:
        state, report = asyncio.run(run_flow())
    page = flow_run_page(state.state_details.flow_run_id, settings.ui_url)
    if isinstance(report, BaseException) or report is None:
        for line in unsent:
            typer.secho(f"warning: alert not sent to {line}", fg=typer.colors.YELLOW, err=True)
        reason = " ".join(str(report).split()) if report else state.message
        raise fail(f"the {domain} flow failed: {reason} (run: {page}; log: {log})")
    print_summary(report, page)
    if not report.succeeded:
        raise typer.Exit(1)


def print_summary(report, page: str | None) -> None:
    """The run's headline and counts, wrapped to the terminal (80 columns when piped)."""
    import shutil
    import textwrap

    width = shutil.get_terminal_size(fallback=(80, 24)).columns
    services = ", ".join(f"{k} {v:,}" for k, v in report.services.items()) or "none"
    lines = [report.headline()]
    if report.fetched:
        lines.append("  fetched: " + ", ".join(f"{k} {v:,}" for k, v in report.fetched.items()))
    lines += [
        "  layers: " + ", ".join(f"{k} {v:,}" for k, v in report.layers.items()),
        f"  curated services: {services}",
        f"  run: {page}",
    ]
    lines += [f"  alert not sent to {line}" for line in report.alerts_unsent]
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


def warn_of_unreachable_alerts(settings) -> None:
    """Say before the run which alert webhook does not answer: its alert would be lost."""
    from dataload.destinations import probe_webhooks
    from dataload.settings import SECRET_BLOCK_PREFIX

    setting = settings.alerts.get_secret_value()
    if not setting or setting.startswith(SECRET_BLOCK_PREFIX):
        return
    for problem in probe_webhooks(setting):
        typer.secho(
            f"warning: alerts will not reach {problem} (DATALOAD_ALERTS)",
            fg=typer.colors.YELLOW,
            err=True,
        )


@contextmanager
def unsent_alerts() -> Iterator[list[str]]:
    """The alert destinations that did not take this process's alerts while the block ran,
    each with why (the `dataload.alerts` logger's warnings)."""
    import logging

    unsent: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            unsent.append(record.getMessage().removeprefix("alert not sent to "))

    handler = Keep(logging.WARNING)
    alerts_logger = logging.getLogger("dataload.alerts")
    alerts_logger.addHandler(handler)
    try:
        yield unsent
    finally:
        alerts_logger.removeHandler(handler)
