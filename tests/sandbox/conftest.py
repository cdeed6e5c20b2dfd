"""Fixtures: a small sandbox in-process (httpx.ASGITransport) and over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from dataload.sandbox.app import SandboxConfig, create_app
from dataload.sandbox.server import SandboxHandle, running_sandbox


@pytest.fixture
def config() -> SandboxConfig:
    """A small university whose VDS lists span several pages."""
    return SandboxConfig(people=300, vds_page_size=10, courses_per_term=40)


@pytest.fixture
async def client(config: SandboxConfig) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of a fresh app over `config` (change `config` to turn knobs)."""
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture
def live(config: SandboxConfig) -> Iterator[SandboxHandle]:
    """The same sandbox served on a real socket."""
    with running_sandbox(config) as handle:
        yield handle
