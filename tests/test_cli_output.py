"""What the command line prints is whole and current: versions, help, summaries, demo tables."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from rich.console import Console
from typer.testing import CliRunner

from dataload.cli import app
from dataload.cli.run import print_summary
from dataload.demo.display import DemoDisplay, report_tables
from dataload.flows.report import LoadReport, SourceUse


def report(domain: str = "person", status: str = "complete", **fields) -> LoadReport:
    values = {
        "flow": f"{domain}-raw-flow",
        "domain": domain,
        "run_id": 7,
        "status": status,
        "duration_s": 12.3,
        "counts": {
            "fetched": 1813,
            "new": 1813,
            "changed": 0,
            "unchanged": 0,
            "deleted": 0,
            "rejected": 0,
        },
        "fetched": {"student ids": 1813},
        "layers": {"raw": 1813, "xform_live": 1813, "xform_deleted": 0},
        "services": {"full": 1813},
        "sources": {"PeopleSoft": SourceUse(1813, 2, {"200": 1813})},
    }
    return LoadReport(**(values | fields))


def test_version_prints_the_installed_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dataload.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == f"dataload {version('dataload')}"


def test_serve_help_says_it_serves_every_domains_deployments() -> None:
    shown = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "three daily" not in shown  # it serves one deployment per schedule of every domain
    assert "every domain's scheduled deployments" in shown and "SIGTERM" in shown


def test_a_summary_prints_numbers_as_progress_does_and_no_empty_fetched_line(capsys) -> None:
    print_summary(report(), "http://ui/runs/flow-run/1")
    person = capsys.readouterr().out
    print_summary(report("jokes", "incremental", fetched={}), "http://ui/runs/flow-run/2")
    jokes = capsys.readouterr().out

    assert "1,813 fetched" in person and "student ids 1,813" in person and "1813" not in person
    assert "fetched:" not in jokes  # jokes notes no source counts: the line was empty


def test_a_guarded_runs_headline_names_the_option_that_allows_the_deletion() -> None:
    guarded = report(
        status="guarded",
        outcome="stored 0 new and 12 changed records, deleted nobody: it would have deleted 3 of "
        "361 live records (0.8%), more than the 0.0% guard; if they really left, run again "
        "allowing a mass deletion",
    )
    assert guarded.headline().endswith("(`dataload run person --allow-mass-delete`)")


def test_the_demos_tables_and_rows_fit_80_columns_without_cutting_a_word() -> None:
    console = Console(width=80, record=True, force_terminal=False)
    reports = [
        report(),
        report("sage_transactions", "incremental"),
        report("term", "guarded", counts={**report().counts, "fetched": 200_000}),
    ]
    for table in report_tables(reports):
        console.print(table)
    display = DemoDisplay(console)
    with display.running(), display.step("person 2,000 people", total=1):
        display.note("fetched 2,000 documents, loaded 1,996 records into the lake of day 1")

    shown = console.export_text()
    # Before: "compl…", "incre…", "fetch…" and notes cut at the edge.
    assert "…" not in shown, shown
    assert "complete" in shown and "incremental" in shown and "guarded" in shown
    assert "200,000 fetched" in shown and "sage_transactions" in shown
    assert "into the lake of day 1" in " ".join(shown.split())
