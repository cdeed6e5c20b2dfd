"""No personal data outside the layers, and one unreadable document costs one person.

SnapLogic answers one person's document with a `NaN` in it (a serializer bug): before, the whole
answer was "not valid JSON", retried until the run failed, and nobody loaded. Now that person is
named and missing (the run is partial, deleting nobody) and everyone else loads. Whatever the
sources sent of that person (`ssn`, `sexualOrientation`, `finAid*`) appears nowhere outside the
layers: not in lake.rejected, not in the log, not in the Prefect server's database.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest
from tests.flows.conftest import _PREFECT_HOME
from tests.flows.world import World

from dataload.flows import person_raw_flow
from dataload.flows.flush import flush_prefect
from dataload.flows.states import IncompleteRun
from dataload.sandbox.persons import ALL_OBJECTS
from dataload.sandbox.truth import person_truth
from dataload.sandbox.university import university_for


def sensitive_values(document: dict) -> set[str]:
    """The values of the never-store fields of a source document, at any depth."""
    found: set[str] = set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for name, item in value.items():
                if name.lower() in ("ssn", "sexualorientation") or name.lower().startswith(
                    "finaid"
                ):
                    text = orjson.dumps(item).decode().strip('"')
                    if len(text) >= 6:  # values short enough to occur by chance are no test
                        found.add(text)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return found


def files_containing(root: Path, needles: set[str]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found = [n for n in needles if n.encode() in data]
            if found:
                hits[str(path)] = found
    return hits


async def test_an_unreadable_person_is_missing_and_their_data_stays_out_of_logs_and_prefect(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    config = world.sandbox.config
    truth = person_truth(config, 1)
    victim = truth.flow_ids[len(truth.flow_ids) // 2]
    university = university_for(config)
    document = university.persons.document(
        university.population.index_of(victim), config.day, ALL_OBJECTS
    )
    secrets = sensitive_values(document)
    assert any("-" in s for s in secrets)  # the ssn is among them
    config.unreadable_people = {victim}

    with caplog.at_level(logging.INFO), pytest.raises(IncompleteRun) as partial:
        await person_raw_flow()

    report = partial.value.report
    assert report.status == "partial" and report.counts["deleted"] == 0
    assert report.missing == [victim]
    assert report.fetched["unreadable documents"] >= 1
    loaded = await world.count("SELECT count(*) FROM person_xform.current_person_data")
    assert loaded == len(truth.flow_ids) - 1
    assert f"person document of {victim} is unreadable: not valid JSON" in caplog.text

    rejected = " ".join(await world.column("SELECT coalesce(sample, '') FROM lake.rejected"))
    await asyncio.to_thread(flush_prefect)  # what the server keeps, written
    leaks = {
        "log": [s for s in secrets if s in caplog.text],
        "lake.rejected": [s for s in secrets if s in rejected],
        "prefect": files_containing(_PREFECT_HOME, secrets),
    }
    assert leaks == {"log": [], "lake.rejected": [], "prefect": {}}
