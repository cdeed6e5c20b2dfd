"""The jokes client names itself as icanhazdadjoke asks: a User-Agent with the library and a
contact, from JOKES_USER_AGENT, or dataload's name and version when none is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dataload.examples.jokes import Jokes
from dataload.settings import Settings


@pytest.fixture
async def jokes_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, list[str]]]:
    """A jokes API that answers one joke and keeps the User-Agent of each call."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    agents: list[str] = []

    async def joke(request: web.Request) -> web.Response:
        agents.append(request.headers.get("User-Agent", ""))
        return web.json_response({"id": "R7UfaahVfFd", "joke": "A joke.", "status": 200})

    app = web.Application()
    app.router.add_get("/", joke)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/")), agents


async def test_the_configured_user_agent_is_sent(
    jokes_api: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, agents = jokes_api
    monkeypatch.setenv("JOKES_URL", url)
    monkeypatch.setenv("JOKES_API_KEY", "")
    monkeypatch.setenv("JOKES_USER_AGENT", "campus-lake (https://data.example.edu)")

    async with await Jokes.configured(Settings()) as api:
        await api.random()

    assert agents == ["campus-lake (https://data.example.edu)"]


async def test_without_one_dataload_names_itself_and_its_version(
    jokes_api: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, agents = jokes_api
    monkeypatch.setenv("JOKES_URL", url)
    monkeypatch.setenv("JOKES_API_KEY", "")
    monkeypatch.delenv("JOKES_USER_AGENT", raising=False)

    async with await Jokes.configured(Settings()) as api:
        await api.random()

    (agent,) = agents
    assert agent.startswith(f"dataload/{metadata.version('dataload')} (")
    assert "JOKES_USER_AGENT" in agent  # no contact was configured, and it says how to add one
