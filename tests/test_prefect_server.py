"""The local Prefect server is managed like the embedded PostgreSQL: detached, state in
DATALOAD_HOME, its port kept, reused by later commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataload.prefect_server import ManagedPrefectServer, free_port

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
