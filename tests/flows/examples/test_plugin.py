"""A domain from another package: a tiny plugin, installed into this environment as a wheel,
is listed by `dataload domains` and loads end to end with `dataload run`, its lake tables
installed from its declaration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.flows.world import World

pytestmark = pytest.mark.slow

PLUGIN_MODULE = '''
"""A plugin domain: a few planets, a complete snapshot."""
from dataload.domains import DomainSpec, Key, Listing, Schedule
from dataload.domains.table import Column, ColumnService, Table
from pydantic import BaseModel


class Params(BaseModel):
    count: int = 3


async def planets(run):
    names = ["Mercury", "Venus", "Earth", "Mars", "Jupiter"][: run.params.count]
    run.note("planets", len(names))
    for number, name in enumerate(names, 1):
        yield {"number": number, "name": name, "ssn": "never stored"}


DOMAIN = DomainSpec(
    name="planets",
    description="Planets, from a plugin package.",
    keys=(Key("number", "bigint"),),
    listing=Listing.COMPLETE,
    source=planets,
    source_label="a list in the plugin",
    params=Params,
    services={"names": ("/name",)},
    never_store=("ssn",),
    schedules=(Schedule("hourly", cron="0 * * * *"),),
)


async def moons(run):
    yield [{"planet": "Earth", "Moon": "Moon", "radius_km": 1737.4},
           {"planet": "Mars", "Moon": "Phobos", "radius_km": 11.3},
           {"planet": "Mars", "Moon": "Deimos", "radius_km": "six"}]


MOONS = DomainSpec(
    name="moons",
    description="Moons, a typed table from a plugin package.",
    keys=(),
    table=Table(
        columns=(Column("planet", "text"), Column("moon", "text"),
                 Column("radius_km", "double precision")),
        key=("planet", "moon"),
        services={"big": ColumnService(("moon",), where="radius_km > 100")},
    ),
    listing=Listing.COMPLETE,
    source=moons,
    source_label="a list in the plugin",
)
'''


def build_wheel(folder: Path) -> Path:
    """The plugin as a wheel: its module and the metadata that registers its entry point."""
    wheel = folder / "dataload_planets-0.1.0-py3-none-any.whl"
    info = "dataload_planets-0.1.0.dist-info"
    files = {
        "dataload_planets.py": PLUGIN_MODULE,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: dataload-planets\nVersion: 0.1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": "[dataload.domains]\nplanets = dataload_planets:DOMAIN\n"
        "moons = dataload_planets:MOONS\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def uv(*args: str) -> None:
    subprocess.run(
        [shutil.which("uv") or "uv", "pip", *args, "--python", sys.executable],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def plugin_installed(tmp_path: Path) -> Iterator[None]:
    uv("install", "--no-deps", str(build_wheel(tmp_path)))
    try:
        yield
    finally:
        uv("uninstall", "dataload-planets")


def dataload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataload.cli", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_plugin_package_adds_a_domain_that_loads_end_to_end(
    world: World, plugin_installed: None
) -> None:
    listed = dataload("domains")
    assert listed.returncode == 0, listed.stderr
    assert "planets  Planets, from a plugin package." in listed.stdout

    result = dataload("run", "planets", "--param", "count=4")

    assert result.returncode == 0, result.stderr
    assert "planets-load: complete" in result.stdout
    rows = await world.conn.fetch(
        "SELECT service, planets_data FROM planets_curated.planets_data_by_service"
        " WHERE number = 3 ORDER BY service"
    )
    assert [(r["service"], r["planets_data"]) for r in rows] == [
        ("full", '{"name": "Earth", "number": 3}'),  # never-store "ssn" removed
        ("names", '{"name": "Earth"}'),  # its paths only
    ]
    assert await world.count("SELECT count(*) FROM planets_xform.current_planets_data") == 4


async def test_a_plugin_adds_a_typed_table_as_briefly(world: World, plugin_installed: None) -> None:
    result = dataload("run", "moons")

    assert result.returncode == 0, result.stderr
    assert "moons-load: complete" in result.stdout and "1 rejected" in result.stdout
    rows = await world.conn.fetch("SELECT * FROM moons_curated.big")
    assert [dict(r) for r in rows] == [{"moon": "Moon"}]
    reason = await world.conn.fetchval("SELECT reason FROM lake.rejected")
    assert reason == "row 3: column radius_km: a text value that is not a double precision"


def test_a_plugin_is_gone_once_uninstalled() -> None:
    listed = dataload("domains")
    assert listed.returncode == 0 and "planets" not in listed.stdout
