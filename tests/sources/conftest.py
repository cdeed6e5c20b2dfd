"""Fixtures for the source client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.sources.scripted_http import ScriptedServer, serving


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
