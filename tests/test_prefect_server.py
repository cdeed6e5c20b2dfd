"""The local Prefect server is managed like the embedded PostgreSQL: detached, state in
DATALOAD_HOME, its port kept, reused by later commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dataload.prefect_server import ManagedPrefectServer, free_port, serves_home

pytestmark = pytest.mark.slow


def dataload(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATALOAD_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "dataload.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_server_starts_detached_is_reused_and_keeps_its_port(isolated_home: Path) -> None:
    server = ManagedPrefectServer.of(isolated_home)
    port = free_port()
    try:
        started = dataload(isolated_home, "server", "start", "--port", str(port))
        assert started.returncode == 0, started.stderr
        assert f"Prefect server started: UI http://127.0.0.1:{port}" in started.stdout
        first = server.status()
        assert first.healthy and first.port == port  # it outlived the command that started it
        # Its UI calls its own API, not 127.0.0.1:4200's (it did before the UI's API URL was set).
        ui_settings = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
        assert ui_settings["api_url"] == f"http://127.0.0.1:{port}/api"

        again, launched = server.start(port=free_port())
        assert not launched and again.pid == first.pid

        status = dataload(isolated_home, "server", "status")
        assert status.returncode == 0 and f"UI http://127.0.0.1:{port}" in status.stdout

        assert dataload(isolated_home, "server", "stop").stdout.strip() == "Prefect server stopped"
        assert not server.status().running
        assert dataload(isolated_home, "server", "status").returncode == 1

        restarted, launched = server.start()
        assert launched and restarted.port == port and restarted.healthy
    finally:
        server.stop()
    assert not server.status().running


def test_two_homes_starting_at_the_same_moment_get_two_servers(tmp_path: Path) -> None:
    homes = [tmp_path / "a", tmp_path / "b"]
    port = free_port()
    servers = [ManagedPrefectServer.of(home) for home in homes]
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-m", "dataload.cli", "server", "start", "--port", str(port)],
                env={**environment, "DATALOAD_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for home in homes
        ]
        outputs = [start.communicate(timeout=240)[0] for start in starts]
        assert [start.returncode for start in starts] == [0, 0], outputs

        a, b = (server.status() for server in servers)
        # Before: one server failed with "address already in use" and its home adopted the
        # other's, or the command failed. Now the loser of the race starts on another port.
        assert a.healthy and b.healthy and a.port != b.port, outputs
        assert port in (a.port, b.port)
        assert serves_home(a.api_url, servers[0].home) and serves_home(b.api_url, servers[1].home)
        assert not serves_home(a.api_url, servers[1].home)
    finally:
        for server in servers:
            server.stop()
