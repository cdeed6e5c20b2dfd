"""Declared domains are installed from Python: tables, triggers and services, once."""

from __future__ import annotations

import asyncpg
import pytest

from dataload.lake import Lake, init_lake
from dataload.lake.filters import ServiceFilterError
from dataload.lake.install import DomainTables

PLANETS = DomainTables(
    name="planets",
    key_columns=("number",),
    key_types=("bigint",),
    key_fields=("n",),
    services={"names": ("/name",)},
)


async def test_a_declared_domain_gets_its_layers_and_services_once(
    conn: asyncpg.Connection, lake: Lake
) -> None:
    first = await init_lake(conn, [PLANETS])
    again = await init_lake(conn, [PLANETS])

    assert first.installed == ["planets"] and again.installed == []
    run = await lake.start_run("planets")
    await run.load([{"n": 1, "name": "Mercury", "mass": 0.33}])
    await run.finish(complete=True)
    rows = await conn.fetch(
        "SELECT service, planets_data::text FROM planets_curated.planets_data_by_service"
        " ORDER BY service"
    )
    assert [tuple(r) for r in rows] == [
        ("full", '{"n": 1, "mass": 0.33, "name": "Mercury"}'),
        ("names", '{"name": "Mercury"}'),
    ]


async def test_a_declaration_with_a_bad_service_path_installs_nothing(
    conn: asyncpg.Connection,
) -> None:
    bad = DomainTables("moons", ("name",), ("text",), ("name",), services={"x": ("no-slash",)})

    with pytest.raises(ServiceFilterError):
        await init_lake(conn, [bad])

    assert not await conn.fetchval("SELECT count(*) FROM lake.domains WHERE domain = 'moons'")
    assert not await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'moons_%'")
