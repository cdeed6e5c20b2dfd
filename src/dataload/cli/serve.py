"""`dataload serve`: every domain's scheduled deployments, served from this process."""

from __future__ import annotations

import typer

from dataload.cli.prefect import prefect_api, quiet_prefect


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
    quiet_prefect()
    api_url = prefect_api(settings)
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
