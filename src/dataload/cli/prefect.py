"""Shared by the commands that use Prefect: which API, and quiet logs."""

from __future__ import annotations

import typer

from dataload.cli.errors import Options, fail


def prefect_api(settings) -> str:
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
        api_url, _ = use_prefect_api(settings.home, on_launch=launching, ui_url=settings.ui_url)
    except PrefectServerError as exc:
        raise fail(str(exc)) from None
    return api_url


def quiet_prefect() -> None:
    """Prefect's console logs go to the log file (unless --verbose): the terminal shows our
    progress and one line per outcome. Called before Prefect is first imported."""
    import os

    if not Options.verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
