"""The command line answers configuration mistakes with one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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


def run_unconfigured(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`dataload ...` as a new user runs it: fresh HOME, no .env, no source variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIGURED)}
    clean |= {"HOME": str(tmp_path), "DATALOAD_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, "-m", "dataload.cli", *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


_CONFIGURED = ("POSTGRES_", "PEOPLE_SOFT_", "SNAPLOGIC_", "SAP_", "VDS_", "PREFECT_", "DATALOAD_")


def test_run_with_nothing_configured_names_the_missing_variables_before_any_network_call(
    tmp_path: Path,
) -> None:
    result = run_unconfigured(tmp_path, "run", "term")

    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip().splitlines()
    assert len(output) <= 5, output
    assert "PEOPLE_SOFT_USER" in output[-1] and "PEOPLE_SOFT_PASS" in output[-1]
    assert not (tmp_path / "home" / "prefect").exists()  # no Prefect server was started


def test_every_missing_person_variable_is_named_in_one_message(tmp_path: Path) -> None:
    result = run_unconfigured(tmp_path, "run", "person", PEOPLE_SOFT_USER="u", VDS_URL="vds.edu")

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    for variable in (
        "PEOPLE_SOFT_PASS",
        "SAP_URL",
        "SAP_KEY",
        "VDS_PASSWORD",
        "SNAPLOGIC_PERSON_KEY",
    ):
        assert variable in line
    assert "VDS_URL must start with http:// or https://" in line
    assert "PEOPLE_SOFT_USER," not in line


@pytest.mark.parametrize(
    ("alerts", "named"),
    [
        ("hooks.example.edu/dataload?token=s3cret", "hooks.example.edu/dataload has no scheme"),
        ("https://ops.example.edu/hook nosuch://x", "nosuch://x is not a URL Apprise knows"),
        ("prefect:ops", "prefect:ops is not a Prefect block"),
    ],
)
def test_a_bad_alert_destination_is_refused_before_the_run_naming_it(
    tmp_path: Path, alerts: str, named: str
) -> None:
    result = run_unconfigured(
        tmp_path, "run", "term", PEOPLE_SOFT_USER="u", PEOPLE_SOFT_PASS="p", DATALOAD_ALERTS=alerts
    )

    # Before: accepted, and every alert of the run was lost ("alert not sent" in the log only).
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: DATALOAD_ALERTS: ") and named in line, line
    assert "s3cret" not in line
    assert not (tmp_path / "home" / "prefect").exists()  # refused before any server started


def test_a_malformed_port_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run_unconfigured(tmp_path, "run", "term", POSTGRES_PORT="abc")

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: POSTGRES_PORT") and "'abc'" in line


def test_a_password_without_a_host_is_not_silently_ignored(tmp_path: Path) -> None:
    result = run_unconfigured(
        tmp_path, "run", "term", POSTGRES_PASS="s3cret", PEOPLE_SOFT_USER="u", PEOPLE_SOFT_PASS="p"
    )

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "POSTGRES_PASS is set but POSTGRES_HOST is not" in line and "s3cret" not in line


def test_an_unexpected_failure_is_one_line_and_its_traceback_goes_to_the_log(
    tmp_path: Path,
) -> None:
    # A folder that does not exist: an OSError no command words itself.
    result = run_unconfigured(tmp_path, "sandbox", "--env-file", str(tmp_path / "no" / "x.env"))

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    log = tmp_path / "home" / "log" / "dataload.log"
    assert str(log) in line and "Traceback" in log.read_text()


@pytest.mark.skipif(not os.environ.get("POSTGRES_HOST"), reason="needs POSTGRES_HOST's server")
def test_a_prefect_api_url_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    database = {name: os.environ[name] for name in os.environ if name.startswith("POSTGRES_")}
    result = run_unconfigured(
        tmp_path,
        "run",
        "term",
        PEOPLE_SOFT_USER="u",
        PEOPLE_SOFT_PASS="p",
        PREFECT_API_URL="http://127.0.0.1:9/api",
        **database,
    )

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "PREFECT_API_URL (http://127.0.0.1:9/api) does not answer" in line
