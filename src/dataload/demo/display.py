"""What the demo shows: a progress line per step while it runs, then the summary tables.

Flow progress comes from the flows' own log records (the person flow's carry a `progress`
extra), read by a logging handler: the flows know nothing of the demo.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

__all__ = ["DemoDisplay", "report_tables"]


class DemoDisplay:
    """One progress row per step (services, then each flow)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            # Whole words at any width (80 columns, a pipe): the label never cut, the note
            # wrapped rather than ellipsised.
            TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=22)),
            BarColumn(bar_width=16),
            TextColumn("{task.fields[note]}", table_column=Column(overflow="fold", ratio=1)),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._handler = _FlowProgressHandler(self)
        self._current: int | None = None

    @contextmanager
    def running(self) -> Iterator[DemoDisplay]:
        loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
        for logger in loggers:
            logger.addHandler(self._handler)
        try:
            with self.progress:
                yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self._handler)

    @contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[int]:
        """A progress row, marked done when the block ends (left unfinished if it raises)."""
        task = self.progress.add_task(description, total=total, note="")
        previous, self._current = self._current, task
        try:
            yield task
        finally:
            self._current = previous
        self.progress.update(task, total=total or 1, completed=total or 1)

    def note(self, text: str, *, task: int | None = None) -> None:
        task = self._current if task is None else task
        if task is not None:
            self.progress.update(task, note=text)

    def advance_to(self, done: int, total: int) -> None:
        if self._current is not None:
            self.progress.update(self._current, completed=done, total=total)


class _FlowProgressHandler(logging.Handler):
    def __init__(self, display: DemoDisplay) -> None:
        super().__init__(logging.INFO)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        progress: dict[str, int] | None = getattr(record, "progress", None)
        if progress:
            self.display.advance_to(progress["done"], progress["total"])
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.display.console.print(f"[yellow]{record.levelname.lower()}:[/] {message}")
        elif not message.startswith(("Finished in state", "Beginning", "View at")):
            self.display.note(message[:60])


def _table(title: str) -> Table:
    """A table that fits 80 columns (a terminal's, or any pipe's) without cutting a word: rules
    under the header only, one space between columns; long names wrap instead."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )


def report_tables(reports: list[Any]) -> list[Table]:
    """The runs' counts, what each layer and curated service holds, what the sources cost."""
    runs = _table("Load runs")
    runs.add_column("domain", overflow="fold")  # a long name wraps, whole, in 80 columns
    runs.add_column("status", no_wrap=True)
    runs.add_column("time", justify="right", no_wrap=True)
    runs.add_column("records", overflow="fold")
    for report in reports:
        style = "green" if report.succeeded else "red"
        counts = report.counts
        names = ("fetched", "new", "changed", "unchanged", "deleted", "rejected")
        runs.add_row(
            report.domain,
            f"[{style}]{report.status}[/]",
            f"{report.duration_s:.1f} s",
            ", ".join(f"{counts[name]:,} {name}" for name in names),
        )

    layers = _table("Rows per layer and per curated service")
    layers.add_column("domain", overflow="fold")
    for column in ("raw (history)", "xform live", "xform deleted"):
        layers.add_column(column, justify="right", no_wrap=True)
    layers.add_column("curated", overflow="fold")
    for report in reports:
        layers.add_row(
            report.domain,
            f"{report.layers.get('raw', 0):,}",
            f"{report.layers.get('xform_live', 0):,}",
            f"{report.layers.get('xform_deleted', 0):,}",
            ", ".join(f"{name} {count:,}" for name, count in sorted(report.services.items())),
        )

    sources = _table("Source systems")
    for column in ("domain", "client", "requests", "retries", "answers"):
        numeric = column in ("requests", "retries")
        sources.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold"
        )
    for report in reports:
        for name, use in report.sources.items():
            answers = ", ".join(f"{status}: {n:,}" for status, n in use.by_status.items())
            sources.add_row(report.domain, name, f"{use.requests:,}", f"{use.retries:,}", answers)
    return [runs, layers, sources]
