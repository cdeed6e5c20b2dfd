"""`dataload serve`: every domain's scheduled deployments, served from this process."""

from __future__ import annotations

import typer

from dataload.cli.prefect import prefect_api, quiet_prefect
from dataload.cli.run import warn_of_unreachable_alerts


def serve() -> None:
    """Serve every domain's scheduled deployments from this process until Ctrl-C or SIGTERM.

    One deployment per schedule of each domain (`dataload domains` lists them: term-raw-daily
    01:00, course-raw-daily 02:00, person-raw-daily 03:00 America/New_York, and the example
    domains'), one run at a time each, on the Prefect server in PREFECT_API_URL or the local
    one (`dataload server`, started when needed). Stopping pauses their schedules; the next
    `dataload serve` resumes them. While it is not running, the UI shows them Not Ready.
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
    warn_of_unreachable_alerts(settings)
    quiet_prefect()
    api_url = prefect_api(settings)
    from dataload.flows.deploy import runner_deployments, serve_deployments
    from dataload.logfile import attach_log_file

    log = attach_log_file()
    ui = api_url.removesuffix("/api")
    deployments = runner_deployments()
    names = ", ".join(deployment.name for deployment in deployments)

    def registering() -> None:
        typer.echo(f"registering {len(deployments)} deployments on {ui} ...")

    def ready() -> None:  # once the runner serves them, not before
        typer.echo(f"serving {names} on {ui} (log: {log})")
        typer.echo(
            "Ctrl-C (or SIGTERM) stops serving and pauses their schedules; `dataload serve` "
            "resumes them"
        )

    stopped_by = "a failure"
    try:
        stopped_by = serve_deployments(deployments, on_register=registering, on_ready=ready)
    finally:
        typer.echo(
            f"stopped by {stopped_by}: {names} are paused on {ui} until the next "
            "`dataload serve` (or resume them in the UI; meanwhile it shows them Not Ready)"
        )
