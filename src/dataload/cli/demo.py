"""`dataload demo`: everything, on this machine."""

from __future__ import annotations

import typer


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
    drift: bool = typer.Option(
        False,
        "--drift",
        help="From day 2 the person source renames personBasic.birthDate and sends the GPA as "
        "text: the runs report the drift and the services it breaks.",
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
        drift=drift,
    )
    raise typer.Exit(run_demo(options))
