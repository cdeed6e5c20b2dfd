"""The `dataload` command: the front door for users.

One module per command group (`run`, `serve`, `db`, `services`, `server`, `sandbox`, `demo`,
`domains` and `history`, `schema`); this module assembles them into one Typer app. Each command is a
thin shell over a function in the package; heavy imports happen inside the command so that
`dataload --help` stays fast. Every failure ends in one line saying what failed and what to
check, exit status 1, by `errors.py`; a traceback goes to the log file (`--verbose` shows it).
"""

from __future__ import annotations

import typer

from dataload.cli import db, demo, domains, run, sandbox, schema, serve, server, services
from dataload.cli.errors import Options, fail, run_app

__all__ = ["app", "fail", "main"]

app = typer.Typer(
    help="Load a university's data (terms, courses, people and the other registered domains) "
    "into the PostgreSQL data lake.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(services.app, name="services")
app.add_typer(server.app, name="server")
app.command("history")(domains.history)
app.command("sandbox")(sandbox.sandbox)
app.command("run")(run.run)
app.command("domains")(domains.domains)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("schema")(schema.schema)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"dataload {version('dataload')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show logs and tracebacks in the terminal as well."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print dataload's version and exit.",
    ),
) -> None:
    Options.verbose = verbose


def main() -> None:
    """The `dataload` entry point."""
    run_app(app)
