"""`dataload demo`: the whole product on one machine that has only Python.

1. Starts the embedded PostgreSQL (or uses POSTGRES_HOST's), a sandbox university in a
   background thread, and the local Prefect server (`dataload server`; UI on 127.0.0.1:4200,
   its output in a log file under the dataload home), or reuses those already running; a
   Prefect server in PREFECT_API_URL is used as it is.
2. Runs term, course and person for one day of the university, showing progress.
3. Prints what the runs did, what each layer holds, what changed, and where to look.
4. Stops what it started, also on Ctrl-C, unless `--keep`: then it says how to stop it
   (`dataload demo --stop` stops the servers it started or reused).

The demo has a database of its own (`dataload_demo`), so it never touches a user's lake, and
remembers which day it loaded last, so that `--day 2` continues from day 1 (it replays the
earlier days first when they are missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from dataload.demo.display import DemoDisplay, report_tables
from dataload.demo.examples import print_examples_summary, run_examples
from dataload.lake.db import DatabaseUnavailable, ensure_database, recreate_database
from dataload.lake.server import EmbeddedPostgresError
from dataload.prefect_server import ManagedPrefectServer, PrefectServerError
from dataload.settings import Settings

__all__ = ["DEMO_DATABASE", "DemoOptions", "run_demo", "stop_demo"]

DEMO_DATABASE = "dataload_demo"
UI_PORT = 4200
DOMAINS = ("term", "course", "person")


@dataclass(frozen=True)
class DemoOptions:
    people: int = 2000
    day: int = 1
    seed: int = 42
    keep: bool = False
    database: str = DEMO_DATABASE
    port: int = UI_PORT
    examples: bool = False  # the example domains instead of the university's
    drift: bool = False  # the person documents drift from day 2 (sandbox/drift.py DEMO_DRIFTS)


@dataclass(frozen=True)
class DemoPlaces:
    """Where the demo keeps its state, under the dataload home."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; returns the process exit code (0 when every flow succeeded)."""
    console = console or Console()
    settings = Settings().model_copy(update={"postgres_db": options.database})
    places = DemoPlaces(settings.home / "demo")
    state = places.read_state()
    started = time.monotonic()
    display = DemoDisplay(console)
    # `services` stops the Prefect server and PostgreSQL (unless kept); `sandbox` always stops.
    with (
        ExitStack() as services,
        ExitStack() as sandbox_stack,
        display.running(),
        _ctrl_c() as interrupted,
    ):
        try:
            prefect = _start_prefect(options, settings, display, services)
            _configure_environment(options, prefect.api_url)
            _start_postgres(settings, display, services)
            days = [1] if options.examples else _days_to_load(options, state)
            if options.examples:  # next to the university's tables, if the demo loaded them
                with display.step(f"database {options.database}"):
                    asyncio.run(ensure_database(settings))
            elif days[0] == 1:
                with display.step(f"fresh database {options.database}"):
                    asyncio.run(recreate_database(settings))
            sandbox = _start_sandbox(options, days[0], display, sandbox_stack)
            with display.step("Prefect server"):
                display.note(prefect.where)
                prefect.wait_ready()
            if options.examples:
                reports = _load_examples(display)
            else:
                reports = _load_days(days, sandbox, display)
        except (KeyboardInterrupt, Exception) as exc:
            # Ctrl-C inside a library callback can come out as another error (pydantic wraps
            # it): what happened is still an interruption.
            if isinstance(exc, KeyboardInterrupt) or interrupted:
                console.print("[yellow]interrupted:[/] stopping what the demo started")
                return 130
            if isinstance(exc, _FlowFailed):
                console.print(f"[red]the {exc.flow} flow failed:[/] {exc.error}")
                if not options.examples:  # the university's day is unknown now
                    places.write_state({**state, "day": 0})
                return 1
            if isinstance(exc, PrefectServerError | DatabaseUnavailable | EmbeddedPostgresError):
                console.print(f"[red]the demo could not start:[/] {exc}")
                return 1
            raise
        if not options.examples:
            state.update(
                seed=options.seed, people=options.people, database=options.database, day=days[-1]
            )
        if options.keep:
            services.pop_all()  # leave them running; `--stop` stops what the demo used
            state["kept"] = {
                "prefect": prefect.server is not None,
                "postgres": settings.uses_embedded_postgres,
            }
        places.write_state(state)
    kept = bool(state.get("kept"))
    if options.examples:
        print_examples_summary(console, options.database, reports)
        console.print(f"demo finished in {time.monotonic() - started:.0f} s")
        return 0
    _print_summary(console, options, days[-1], sandbox.config, reports)
    up = kept or not prefect.started
    _print_where_to_look(console, options, days[-1], sandbox.config, prefect.ui_url, up, kept)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    return 0


def stop_demo(console: Console | None = None) -> None:
    """Stop what a `dataload demo --keep` left running."""
    console = console or Console()
    settings = Settings()
    places = DemoPlaces(settings.home / "demo")
    state = places.read_state()
    kept = state.pop("kept", None)
    if not kept:
        console.print("nothing to stop: no demo was kept running")
        return
    if kept.get("prefect") and ManagedPrefectServer.of(settings.home).stop():
        console.print("stopped the Prefect server")
    if kept.get("postgres"):
        from dataload.lake.db import embedded_server

        if embedded_server(settings).stop():
            console.print("stopped the embedded PostgreSQL")
    places.write_state(state)


@contextmanager
def _ctrl_c() -> Iterator[list[bool]]:
    """While the demo runs, Ctrl-C is remembered (the list becomes truthy) and raised as
    KeyboardInterrupt as usual."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def remember(signum: int, frame: object) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


class _FlowFailed(Exception):
    def __init__(self, flow: str, error: BaseException) -> None:
        super().__init__(flow, error)
        self.flow = flow
        self.error = error


@dataclass
class _DemoPrefect:
    """The Prefect API the demo uses: the managed server (`server`), or PREFECT_API_URL's."""

    api_url: str
    server: ManagedPrefectServer | None
    started: bool

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    @property
    def where(self) -> str:
        if self.server is None:
            return f"{self.ui_url} (PREFECT_API_URL)"
        verb = "started" if self.started else "reused"
        return f"{self.ui_url} ({verb}; log: {self.server.log_path})"

    def wait_ready(self) -> None:
        if self.server is not None:
            # Started again on another port if a server of another home took this one first.
            status = self.server.wait_ready()
            if status.api_url and status.api_url != self.api_url:
                self.api_url = os.environ["PREFECT_API_URL"] = status.api_url


def _start_prefect(
    options: DemoOptions, settings: Settings, display: DemoDisplay, services: ExitStack
) -> _DemoPrefect:
    """PREFECT_API_URL's server, or the managed one: reused when it runs, else launched in the
    background (it comes up while PostgreSQL and the sandbox start; `wait_ready` waits)."""
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    if os.environ.get("PREFECT_API_URL"):
        return _DemoPrefect(os.environ["PREFECT_API_URL"], None, started=False)
    server = ManagedPrefectServer.of(settings.home, settings.ui_url)

    def launched(port: int) -> None:
        if port != options.port:
            display.console.print(f"port {options.port} is taken: the Prefect UI is on {port}")

    status, started = server.start(port=options.port, on_launch=launched, wait=False)
    if started:
        services.callback(server.stop)
    assert status.api_url is not None
    return _DemoPrefect(status.api_url, server, started)


def _configure_environment(options: DemoOptions, api_url: str) -> None:
    """Point this process's flows at the demo database and the Prefect server, quietly.

    Set before prefect is first imported: it reads its settings and logging config then.
    """
    os.environ.update(
        {
            "POSTGRES_DB": options.database,
            "PREFECT_API_URL": api_url,
            # Flow logs reach the UI; the terminal shows the demo's own progress instead.
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        }
    )


def _start_postgres(settings: Settings, display: DemoDisplay, services: ExitStack) -> bool:
    """Start the embedded PostgreSQL unless POSTGRES_HOST names a server, or it runs already;
    returns whether the demo started it (then it stops it too)."""
    from dataload.lake.db import connect_params, embedded_server

    with display.step("PostgreSQL"):
        if not settings.uses_embedded_postgres:
            display.note(f"{settings.postgres_host}:{settings.postgres_port} (POSTGRES_HOST)")
            return False
        server = embedded_server(settings)
        was_running = server.status().running
        params = connect_params(settings)  # starts it
        display.note(f"embedded, 127.0.0.1:{params.port}, data in {settings.home}")
    if not was_running:
        services.callback(server.stop)
    return not was_running


def _days_to_load(options: DemoOptions, state: dict[str, Any]) -> list[int]:
    """Just the requested day when the database holds the day before; else from day 1."""
    same_university = all(
        state.get(name) == getattr(options, name) for name in ("seed", "people", "database")
    )
    if options.day > 1 and same_university and state.get("day") == options.day - 1:
        return [options.day]
    return list(range(1, options.day + 1))


def _start_sandbox(options: DemoOptions, first_day: int, display: DemoDisplay, stack: ExitStack):
    from dataload.sandbox.config import SandboxConfig
    from dataload.sandbox.server import running_sandbox

    with display.step("sandbox university"):
        config = SandboxConfig(seed=options.seed, people=options.people, day=first_day)
        if options.drift:
            from dataload.sandbox.drift import DEMO_DRIFTS

            config.drifts = list(DEMO_DRIFTS)
            display.note("person documents drift: " + "; ".join(d.describe() for d in DEMO_DRIFTS))
        sandbox = stack.enter_context(running_sandbox(config))
        os.environ.update(sandbox.env())
        display.note(f"{options.people:,} people, seed {options.seed}, at {sandbox.base_url}")
    return sandbox


def _load_days(days: list[int], sandbox: Any, display: DemoDisplay) -> list[Any]:
    """Run the flows of each day in turn; the last day's reports."""
    from dataload.flows.flush import flush_prefect

    try:
        return asyncio.run(_run_flows(days, sandbox, display))
    finally:
        flush_prefect()


def _load_examples(display: DemoDisplay) -> list[Any]:
    from dataload.flows.flush import flush_prefect

    try:
        return asyncio.run(run_examples(display, _FlowFailed))
    finally:
        flush_prefect()


async def _run_flows(days: list[int], sandbox: Any, display: DemoDisplay) -> list[Any]:
    from dataload.flows import FLOWS
    from dataload.flows.states import IncompleteRun

    reports: list[Any] = []
    for day in days:
        sandbox.config.day = day
        reports = []
        for name in DOMAINS:
            with display.step(f"day {day}: {name} flow"):
                try:
                    report = await FLOWS[name]()
                except IncompleteRun as incomplete:  # partial or guarded: shown, in red
                    report = incomplete.report
                except Exception as exc:
                    raise _FlowFailed(name, exc) from exc
                display.note(
                    f"{report.counts['fetched']:,} fetched, {report.counts['new']:,} new, "
                    f"{report.counts['changed']:,} changed, {report.counts['deleted']:,} deleted"
                )
            reports.append(report)
    return reports


def _print_summary(
    console: Console, options: DemoOptions, day: int, config: Any, reports: list[Any]
) -> None:
    from dataload.sandbox.truth import person_truth

    console.print()
    console.print(
        f"[bold]Day {day} of a university of {options.people:,} people[/] "
        f"(seed {options.seed}, date {config.date_of(day).isoformat()})"
    )
    for table in report_tables(reports):
        console.print(table)
    _print_drift(console, options, reports)
    if day == 1:
        return
    # The sandbox's truth, for the people the flow loads (listed by PeopleSoft, SAP or VDS).
    truth = person_truth(config, day)
    listed, was_listed = set(truth.flow_ids), set(person_truth(config, day - 1).flow_ids)
    stayed = listed & was_listed
    changed = stayed.intersection(truth.changed)
    shuffled = stayed.intersection(truth.shuffled) - changed
    person = next(report for report in reports if report.domain == "person")
    console.print("[bold]What changed since the day before[/]")
    console.print(
        f"  the sources: {len(changed)} people changed, {len(shuffled)} only reordered lists, "
        f"{len(listed - was_listed)} arrived, {len(was_listed - listed)} left"
    )
    console.print(
        f"  the lake:    {person.counts['changed']} changed and {person.counts['new']} new "
        f"history rows, {person.counts['deleted']} people marked deleted; reordered lists "
        "made no history"
    )


def _print_drift(console: Console, options: DemoOptions, reports: list[Any]) -> None:
    """What the runs found of their sources' shapes: drift and the services it breaks."""
    drifted = [report for report in reports if report.schema_changes]
    if not drifted:
        return
    console.print("[bold]Schema drift[/] (against each domain's last accepted shape)")
    for report in drifted:
        for line in report.schema_changes:
            console.print(f"  {report.domain}: {line}", highlight=False)
    db_env = f"POSTGRES_DB={options.database}"
    console.print(
        f"  the shape   {db_env} uv run dataload schema person [--history | --service bioDemo]"
    )


def _print_where_to_look(
    console: Console, options: DemoOptions, day: int, config: Any, url: str, up: bool, keep: bool
) -> None:
    from dataload.sandbox.truth import person_truth

    truth = person_truth(config, day)
    someone = (truth.changed or truth.flow_ids)[0]
    db_env = f"POSTGRES_DB={options.database}"
    console.print()
    console.print("[bold]Where to look[/]")
    if up:
        console.print(f"  Prefect UI  {url}  (flow runs; each run's summary under Artifacts)")
    else:
        console.print(f"  Prefect UI  {url} (stopped now: `uv run dataload demo --keep` keeps it)")
    console.print(
        "  tables      term_raw.term_data, term_xform.current_term_data, "
        "term_curated.term_data_by_service (likewise course_* and person_*), lake.runs"
    )
    console.print(f"  history     {db_env} uv run dataload history person {someone}")
    console.print(
        f'  a query     psql "$({db_env} uv run dataload db url)" -c "SELECT service, count(*) '
        "FROM person_curated.person_data_by_service GROUP BY service\"  (psql: PostgreSQL's "
        "client, e.g. apt install postgresql-client)"
    )
    console.print(f"  next day    uv run dataload demo --day {day + 1}")
    if keep:
        console.print(
            "[bold]Still running[/] (kept): the Prefect server and PostgreSQL; "
            "stop them with `uv run dataload demo --stop`"
        )
    else:
        console.print("Stopped the Prefect server, the sandbox and what else the demo started.")
