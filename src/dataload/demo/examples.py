"""`dataload demo --examples`: every example domain (seeds 001-004) against the sandbox's
simulators, into the demo database, and what each loaded."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from dataload.demo.display import DemoDisplay, report_tables

__all__ = ["EXAMPLE_PARAMS", "example_domains", "print_examples_summary", "run_examples"]

#: Parameters of the demo's runs: a small, fixed month of taxi trips.
EXAMPLE_PARAMS: dict[str, dict[str, str]] = {"taxi_trips": {"year": "2024", "month": "1"}}


def example_domains() -> list[str]:
    """The registered domains that dataload ships as examples, in name order."""
    from dataload.domains import all_domains

    return [
        name
        for name, spec in all_domains().items()
        if spec.source is not None and spec.source.__module__.startswith("dataload.examples.")
    ]


async def run_examples(display: DemoDisplay, failed: type[Exception]) -> list[Any]:
    """Run each example domain once; `failed(name, error)` is raised for the first failure."""
    from dataload.flows.domain import domain_flow
    from dataload.flows.states import IncompleteRun

    reports = []
    for name in example_domains():
        with display.step(f"{name}"):
            try:
                report = await domain_flow(name, EXAMPLE_PARAMS.get(name, {}))
            except IncompleteRun as incomplete:  # partial or guarded: shown, in red
                report = incomplete.report
            except Exception as exc:
                raise failed(name, exc) from exc
            display.note(f"{report.counts['fetched']:,} fetched, {report.counts['new']:,} new")
        reports.append(report)
    return reports


def print_examples_summary(console: Console, database: str, reports: list[Any]) -> None:
    console.print()
    console.print("[bold]The example domains[/] (seeds 001-004, against the sandbox)")
    for table in report_tables(reports):
        console.print(table)
    console.print()
    console.print("[bold]Where to look[/]")
    console.print(
        "  documents   <domain>_raw.<domain>_data, <domain>_xform.current_<domain>_data, "
        "<domain>_curated.<domain>_data_by_service (currencies, jokes, products)"
    )
    console.print(
        "  tables      <domain>_raw.<domain>, <domain>_xform.<domain>, <domain>_curated.<service>"
        " (exchange_rates, sage_transactions, taxi_trips: typed columns)"
    )
    console.print("  the ledger  lake.runs, lake.cursors, lake.rejected, lake.table_versions")
    console.print(
        f'  a query     psql "$(POSTGRES_DB={database} dataload db url)" -c "SELECT date, rate'
        " FROM exchange_rates_xform.exchange_rates WHERE base = 'EUR' AND currency = 'USD'"
        ' ORDER BY date"'
    )
    console.print(
        f'              psql "$(POSTGRES_DB={database} dataload db url)" -c "SELECT payment_type,'
        ' count(*), avg(tip_amount) FROM taxi_trips_xform.taxi_trips GROUP BY 1"'
    )
    console.print(
        "  again       `dataload demo --examples` reloads them: what did not change is skipped"
    )
