"""Flow tests: real flow runs against one Prefect server for the session, and per test a sandbox
and a PostgreSQL database of its own.

Prefect reads its settings when it is first imported, so the server's address is chosen and
put in the environment here, before anything imports prefect.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# Imports no Prefect module, so it may come before the environment is set below.
from dataload.prefect_server import free_port

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="dataload-prefect-test-"))
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)  # also when no test used it
_PREFECT_PORT = free_port()
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME / "client")
os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_PREFECT_PORT}/api"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from tests.flows.world import World  # noqa: E402

from dataload.flows.flush import flush_prefect  # noqa: E402
from dataload.lake import db  # noqa: E402
from dataload.prefect_server import PrefectServer  # noqa: E402
from dataload.sandbox.config import DayRates, SandboxConfig  # noqa: E402
from dataload.sandbox.server import running_sandbox  # noqa: E402
from dataload.settings import Settings  # noqa: E402

#: People in the test university: enough for several SnapLogic batches of 100.
TEST_PEOPLE = 400


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A Prefect server (API only, no loop services) shared by every flow test."""
    server = PrefectServer(home=_PREFECT_HOME / "server", port=_PREFECT_PORT, services=False)
    server.start()
    try:
        # In case prefect was imported before this module set the environment.
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        flush_prefect()
        server.stop()


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that make `Settings()` name the same database."""
    env = {
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASS": settings.postgres_pass.get_secret_value(),
        "DATALOAD_HOME": str(settings.home),
        # Small batches, so that a few hundred people make several of each.
        "DATALOAD_PERSON_BATCH_SIZE": "100",
        "DATALOAD_LAKE_BATCH_SIZE": "50",
    }
    if settings.postgres_host:
        env["POSTGRES_HOST"] = settings.postgres_host
    return env


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """The test university; a test may change it before or between flow runs.

    Departures and cancellations are more frequent than by default, so that a day-2 run of a
    few hundred people sees some."""
    return SandboxConfig(
        people=TEST_PEOPLE, seed=7, rates=DayRates(person_leave=0.03, course_cancel=0.03)
    )


@pytest.fixture
async def world(
    prefect_api: str,
    lake_settings: Settings,
    sandbox_config: SandboxConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[World]:
    """A sandbox and a fresh database, and an environment pointing the flows at both."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.delenv("POSTGRES_HOST", raising=False)
    for name, value in settings_environment(lake_settings).items():
        monkeypatch.setenv(name, value)
    with running_sandbox(sandbox_config) as sandbox:
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        conn = await db.connect(lake_settings)
        try:
            yield World(sandbox, Settings(), conn)
        finally:
            await conn.close()
