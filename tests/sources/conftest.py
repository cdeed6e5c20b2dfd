"""Fixtures for the source client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.sources.scripted_http import ScriptedServer, serving

from dataload.sandbox.app import SandboxConfig
from dataload.sandbox.server import SandboxHandle, running_sandbox
from dataload.settings import Settings

# Sandbox knobs a test may change; the `sandbox` fixture puts them back.
_KNOBS = (
    "day",
    "faults",
    "latency",
    "credentials",
    "snaplogic_concurrency_limit",
    "retry_after_s",
    "hang_s",
    "empty_object_rate",
)


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    app = ScriptedServer()
    with serving(app) as base_url:
        app.base_url = base_url
        yield app


@pytest.fixture
def scripted(scripted_server: ScriptedServer) -> ScriptedServer:
    scripted_server.reset()
    return scripted_server


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    """One sandbox for the session: a small university, VDS pages small enough to page."""
    with running_sandbox(SandboxConfig(people=400, vds_page_size=40, hang_s=5.0)) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> Iterator[SandboxHandle]:
    """The session sandbox, healthy at the start of the test and restored after it."""
    config = sandbox_server.config
    saved = {name: getattr(config, name) for name in _KNOBS}
    sandbox_server.stats.reset()
    yield sandbox_server
    for name, value in saved.items():
        setattr(config, name, value)
    config.endpoint_faults.clear()
    config.endpoint_latency.clear()


@pytest.fixture
def sandbox_settings(sandbox: SandboxHandle) -> Settings:
    return Settings(_env_file=None, **sandbox.env())
