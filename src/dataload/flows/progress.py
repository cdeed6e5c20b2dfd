"""Live progress of a run's long steps: in the terminal, and as a progress artifact in the UI.

A flow declares its steps on `session.progress` ("people queried", total 2,000) and either adds
to a step's count as it goes or lets the step read a counter it keeps anyway. Nothing here is
pushed per record: readers poll. `terminal_progress()` (the CLI's) shows every running step
with its count, rate and ETA: a live display in a terminal of 100 columns or more, otherwise
one plain line every few seconds (80 columns, piped, a log file). `publish_progress()` (the
flow's) keeps a Prefect progress artifact up to date during the run.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TextIO

__all__ = [
    "RunProgress",
    "Step",
    "describe_step",
    "publish_progress",
    "terminal_progress",
]

#: Seconds between two plain progress lines, and between two updates of the UI's artifact.
PLAIN_INTERVAL_S = 5.0
ARTIFACT_INTERVAL_S = 3.0
#: Narrower terminals get plain lines: a live row with bar, counts, rate and ETA needs ~100.
LIVE_MIN_COLUMNS = 100


@dataclass
class Step:
    """One long step: how many things are done of how many (None: not known yet)."""

    name: str
    total: int | None = None
    count: int = 0
    reader: Callable[[], int] | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    #: Ended by a failure of the run, not by doing everything.
    stopped: bool = False
    #: A step that waits rather than counts ("waiting for the writer lock"): why it waits.
    note: str | None = None

    @property
    def done(self) -> int:
        return self.reader() if self.reader else self.count

    def add(self, n: int = 1) -> None:
        self.count += n

    def finish(self, *, stopped: bool = False) -> None:
        if self.ended is None:
            self.ended = time.monotonic()
            self.stopped = stopped
            if not stopped:
                self.total = self.done

    @property
    def finished(self) -> bool:
        return self.ended is not None

    @property
    def rate(self) -> float:
        """Things per second since the step started."""
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.finished or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    @property
    def fraction(self) -> float:
        if self.finished and not self.stopped:
            return 1.0
        if not self.total:
            return 0.0
        return min(self.done / self.total, 1.0)


class RunProgress:
    """The steps of one flow run, in order. Registered while open, for the terminal to find."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.steps: list[Step] = []
        self.closed = False
        #: Set by the session when the run fails: unfinished steps are shown as stopped.
        self.failed = False

    def step(
        self, name: str, *, total: int | None = None, reader: Callable[[], int] | None = None
    ) -> Step:
        """Declare a step (`reader` returns its count when the flow counts it anyway)."""
        step = Step(name, total=total, reader=reader)
        self.steps.append(step)
        return step

    @property
    def fraction(self) -> float:
        """Overall progress, each declared step weighing the same."""
        if not self.steps:
            return 0.0
        return sum(step.fraction for step in self.steps) / len(self.steps)

    def summary(self) -> str:
        return "; ".join(describe_step(step) for step in self.steps) or "starting"

    def waiting(self, name: str) -> Step:
        """Declare a step that waits (its `note` says for what), shown from now on."""
        step = self.step(name)
        step.note = ""
        self.__enter__()  # before the run holds anything, the terminal must see it already
        return step

    def __enter__(self) -> RunProgress:
        if self not in _RUNS:
            # A long-lived process (`dataload serve`, a worker) keeps only the last few runs.
            _RUNS[:] = [*_RUNS[-(_KEPT_RUNS - 1) :], self]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for step in self.steps:
            step.finish(stopped=self.failed)
        self.closed = True
        _redraw_now.set()


#: The runs of this process, for the terminal display (the CLI runs one flow at a time).
_RUNS: list[RunProgress] = []
_KEPT_RUNS = 10
_redraw_now = threading.Event()


def describe_step(step: Step) -> str:
    """`people queried 1,200/2,000 310/s ETA 3s`, or `people queried 2,000 in 6.4s` once done;
    a waiting step: `waiting for the writer lock 6s: person run 12 is loading ...`."""
    if step.note is not None:
        waited = (step.ended or time.monotonic()) - step.started
        if step.finished:
            return f"{step.name}: {waited:.1f}s" + (", stopped by the failure" * step.stopped)
        return f"{step.name} {_duration(waited)}: {step.note}"
    shown_total = step.total is not None and (step.stopped or not step.finished)
    count = f"{step.name} {step.done:,}{f'/{step.total:,}' if shown_total else ''}"
    pace = _pace(step)
    return f"{count}{',' if step.stopped else ''} {pace}" if pace else count


def _pace(step: Step) -> str:
    """`310/s ETA 3s` while running, `in 6.4s` when done, `stopped by the failure`."""
    if step.stopped:
        return "stopped by the failure"
    if step.finished:
        return f"in {(step.ended or 0.0) - step.started:.1f}s"
    if not step.done:
        return ""
    eta = f" ETA {_duration(step.eta_s)}" if step.eta_s is not None else ""
    return f"{step.rate:,.0f}/s{eta}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@asynccontextmanager
async def publish_progress(progress: RunProgress) -> AsyncIterator[RunProgress]:
    """Keep a progress artifact of the current flow run up to date while the block runs."""
    from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact

    with progress:
        artifact = None
        try:
            artifact = await acreate_progress_artifact(
                progress=0.0,
                key=f"{progress.domain}-progress",
                description=progress.summary(),
            )
        except Exception:  # the UI's progress is a nicety: never fail a run for it
            pass

        async def update() -> None:
            while artifact is not None:
                await asyncio.sleep(ARTIFACT_INTERVAL_S)
                await _update(artifact)

        async def _update(artifact_id) -> None:
            try:
                await aupdate_progress_artifact(
                    artifact_id,
                    progress=round(progress.fraction * 100, 1),
                    description=progress.summary(),
                )
            except Exception:
                pass

        updater = asyncio.create_task(update())
        try:
            yield progress
        finally:
            updater.cancel()
            if artifact is not None:
                for step in progress.steps:  # final figures, before `with progress` ends
                    step.finish(stopped=progress.failed)
                await _update(artifact)


@contextmanager
def terminal_progress(stream: TextIO | None = None) -> Iterator[None]:
    """Show the running flows' steps on `stream` (stderr) while the block runs."""
    stream = stream or sys.stderr
    columns = shutil.get_terminal_size(fallback=(80, 24)).columns
    live = stream.isatty() and columns >= LIVE_MIN_COLUMNS
    stop = threading.Event()
    before = {id(run) for run in _RUNS}  # runs from before this display are not its business

    def runs() -> list[RunProgress]:
        return [run for run in list(_RUNS) if id(run) not in before]

    worker = threading.Thread(
        target=_live if live else _plain, args=(stream, stop, runs), daemon=True, name="progress"
    )
    worker.start()
    try:
        yield
    finally:
        stop.set()
        _redraw_now.set()
        worker.join(timeout=5)


def _plain(stream: TextIO, stop: threading.Event, runs: Callable[[], list[RunProgress]]) -> None:
    """One line per running step every PLAIN_INTERVAL_S, and one when a step finishes."""
    reported: set[int] = set()
    last = time.monotonic()
    while True:
        _redraw_now.wait(0.5)
        _redraw_now.clear()
        due = time.monotonic() - last >= PLAIN_INTERVAL_S
        for progress in runs():
            for step in list(progress.steps):
                if step.finished and id(step) not in reported:
                    reported.add(id(step))
                    if step.done or not step.stopped:  # a step the failure came before: silent
                        print(f"{progress.domain}: {describe_step(step)}", file=stream, flush=True)
                elif due and not step.finished and (step.done or step.total or step.note):
                    print(f"{progress.domain}: {describe_step(step)}", file=stream, flush=True)
        if due:
            last = time.monotonic()
        if stop.is_set():
            return


def _live(stream: TextIO, stop: threading.Event, runs: Callable[[], list[RunProgress]]) -> None:
    """A rich progress display: a row per step with bar, count, rate and ETA."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(file=stream)
    rows: dict[int, int] = {}
    columns = (
        TextColumn("{task.description:<26}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=console, transient=False, refresh_per_second=4) as display:
        while True:
            for progress in runs():
                for step in list(progress.steps):
                    if id(step) not in rows:
                        rows[id(step)] = display.add_task(
                            f"{progress.domain}: {step.name}", total=step.total, rate=""
                        )
                    pace = describe_step(step) if step.note is not None else _pace(step)
                    display.update(rows[id(step)], completed=step.done, total=step.total, rate=pace)
            if stop.is_set():
                return
            _redraw_now.wait(0.25)
            _redraw_now.clear()
