"""`dataload demo` as a user runs it: to completion, and interrupted; nothing left running."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dataload.prefect_server import free_port

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


class Demo:
    """`dataload demo` in a home of its own, on a port of its own, with a database of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.database = f"dataload_demo_test_{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "DATALOAD_HOME": str(home), "COLUMNS": "120"}
        self.env.pop("PREFECT_API_URL", None)

    def command(self, *args: str) -> list[str]:
        demo = [sys.executable, "-m", "dataload.cli", "demo", "--people", "300"]
        return [*demo, "--port", str(self.port), "--database", self.database, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=240
        )

    def assert_nothing_left_running(self) -> None:
        assert not _processes_mentioning(str(self.home)), "a process the demo started survived"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", self.port)) != 0, "the Prefect server survived"

    def drop_database(self) -> None:
        if os.environ.get("POSTGRES_HOST"):
            subprocess.run(
                [sys.executable, "-c", _DROP.format(name=self.database)], env=self.env, check=True
            )


_DROP = """
import asyncio
from dataload.lake import db
from dataload.settings import Settings

async def drop():
    conn = await db.connect(Settings(), database="postgres")
    await conn.execute('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()

asyncio.run(drop())
"""


@pytest.fixture
def demo() -> Iterator[Demo]:
    # As root the embedded PostgreSQL runs as an unprivileged user who must reach its home.
    root = Path(tempfile.mkdtemp(prefix="dataload-demo-test-"))
    root.chmod(0o755)
    demo = Demo(root / "home")
    try:
        yield demo
    finally:
        demo.drop_database()
        shutil.rmtree(root, ignore_errors=True)


def test_demo_loads_two_days_prints_where_to_look_and_stops_everything(demo: Demo) -> None:
    result = demo.run("--day", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Day 2 of a university of 300 people" in out
    assert out.count("complete") >= 3
    assert "What changed since the day before" in out and "marked deleted" in out
    assert f"POSTGRES_DB={demo.database} uv run dataload history person U" in out
    assert "Stopped the Prefect server" in out
    assert "prefect" not in result.stderr.lower()  # its startup noise went to its log file
    demo.assert_nothing_left_running()


def test_an_interrupted_demo_stops_what_it_started(demo: Demo) -> None:
    process = subprocess.Popen(
        demo.command(), env=demo.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{demo.port}/api/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(1)  # into the flows
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130, output
    assert "interrupted" in output
    demo.assert_nothing_left_running()


def test_demo_stop_stops_the_servers_a_kept_demo_used_even_when_it_reused_them(
    demo: Demo,
) -> None:
    env = demo.env
    started = subprocess.run(
        [sys.executable, "-m", "dataload.cli", "server", "start", "--port", str(demo.port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr

    kept = demo.run("--keep")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "reused" in kept.stdout and "uv run dataload demo --stop" in kept.stdout

    stopped = subprocess.run(
        [sys.executable, "-m", "dataload.cli", "demo", "--stop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "stopped the Prefect server" in stopped.stdout
    demo.assert_nothing_left_running()


def test_demo_examples_loads_every_example_domain(demo: Demo) -> None:
    result = demo.run("--examples")

    assert result.returncode == 0, result.stdout + result.stderr
    layers = result.stdout.split("Rows per layer")[1].split("Source systems")[0]
    rows = layers.split("─\n", 1)[1]  # under the header's rule: domain, raw, live, deleted, ...
    live = {
        cells[0]: int(cells[2].replace(",", ""))
        for line in rows.splitlines()
        if len(cells := line.split()) >= 4 and cells[2].replace(",", "").isdigit()
    }
    examples = ("currencies", "exchange_rates", "jokes", "products", "sage_transactions")
    assert set(live) == {*examples, "taxi_trips"}
    assert all(rows > 0 for rows in live.values()), live
    demo.assert_nothing_left_running()
