"""The command line answers configuration mistakes with one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataload.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_db_init_with_an_unknown_host_names_the_variable_in_one_line() -> None:
    result = run_cli("db", "init", POSTGRES_HOST="no-such-host.invalid", POSTGRES_PASS="s3cret")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "POSTGRES_HOST" in lines[0]
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_db_commands_refuse_the_embedded_server_when_a_host_is_configured() -> None:
    result = run_cli("db", "start", POSTGRES_HOST="db.example.edu")
    assert result.returncode == 1
    assert "POSTGRES_HOST is set" in result.stderr and "Traceback" not in result.stderr
