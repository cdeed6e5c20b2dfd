"""The `dataload` command: the front door for users.

Each command is a thin shell over a function in the package; heavy imports happen inside the
command so that `dataload --help` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Load terms, courses and people into the PostgreSQL data lake.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The lake's PostgreSQL: embedded server and migrations.", no_args_is_help=True)
services_app = typer.Typer(help="Curated-layer service filters.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(services_app, name="services")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


# --- db ------------------------------------------------------------------------------------

# --- services ------------------------------------------------------------------------------

# --- history -------------------------------------------------------------------------------

# --- sandbox -------------------------------------------------------------------------------

# --- run, serve, demo ----------------------------------------------------------------------


if __name__ == "__main__":
    app()
