"""What the demo shows: a progress line per step while it runs, then the summary tables.

Flow progress comes from the flows' own log records (the person flow's carry a `progress`
extra), read by a logging handler: the flows know nothing of the demo.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["DemoDisplay", "report_tables"]


class DemoDisplay:
    """One progress row per step (services, then each flow)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<22}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[note]}"),
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


def report_tables(reports: list[Any]) -> list[Table]:
    """The runs' counts, what each layer and curated service holds, what the sources cost."""
    runs = Table(title="Load runs", title_justify="left")
    for column in ("domain", "status", "time", "fetched", "new", "changed", "unchanged", "deleted"):
        runs.add_column(column, justify="left" if column in ("domain", "status") else "right")
    runs.add_column("rejected", justify="right")
    for report in reports:
        style = "green" if report.succeeded else "red"
        counts = report.counts
        runs.add_row(
            report.domain,
            f"[{style}]{report.status}[/]",
            f"{report.duration_s:.1f} s",
            *(f"{counts[name]:,}" for name in ("fetched", "new", "changed", "unchanged")),
            f"{counts['deleted']:,}",
            f"{counts['rejected']:,}",
        )

    layers = Table(title="Rows per layer and per curated service", title_justify="left")
    for column in ("domain", "raw (history)", "xform live", "xform deleted", "curated"):
        layers.add_column(column, justify="left" if column in ("domain", "curated") else "right")
    for report in reports:
        layers.add_row(
            report.domain,
            f"{report.layers.get('raw', 0):,}",
            f"{report.layers.get('xform_live', 0):,}",
            f"{report.layers.get('xform_deleted', 0):,}",
            ", ".join(f"{name} {count:,}" for name, count in sorted(report.services.items())),
        )

    sources = Table(title="Source systems", title_justify="left")
    for column in ("domain", "client", "requests", "retries", "answers"):
        sources.add_column(column, justify="right" if column in ("requests", "retries") else "left")
    for report in reports:
        for name, use in report.sources.items():
            answers = ", ".join(f"{status}: {n:,}" for status, n in use.by_status.items())
            sources.add_row(report.domain, name, f"{use.requests:,}", f"{use.retries:,}", answers)
    return [runs, layers, sources]
