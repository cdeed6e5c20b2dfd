"""What every command shares when it fails: one line, exit status 1, the traceback in the
log file (`--verbose` shows it too)."""

from __future__ import annotations

import sys

import typer


class Options:
    verbose = False


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def lake_error(exc: Exception) -> typer.Exit:
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


def forget_handled_interrupts() -> None:
    """Let an exit code a command chose after Ctrl-C stand.

    CPython remembers a KeyboardInterrupt that left code run by a string `exec` (dataclasses,
    among others, build their methods so while a module is imported), even when a caller caught it;
    under `python -m` it then ends the process by SIGINT instead of with the exit code. Every
    string `exec` forgets that at its start, so one that does nothing clears it. An interrupt that
    nothing caught still ends the process by SIGINT: it leaves `main` after this has run.
    """
    exec("pass")


def run_app(app: typer.Typer) -> None:
    """Run the command line: any failure a command did not word itself becomes one line."""
    from dataload.settings import ConfigurationError

    try:
        app()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except Exception as exc:
        from dataload.logfile import log_failure

        if Options.verbose:
            import traceback

            traceback.print_exception(exc)
        path = log_failure(" ".join(sys.argv[1:]), exc)
        text = " ".join(str(exc).split()) or type(exc).__name__
        where = f" (traceback in {path})" if path else ""
        typer.secho(f"error: {text}{where}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    finally:
        forget_handled_interrupts()
