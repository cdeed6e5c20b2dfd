"""The generated service filters agree with a plain reading of DESIGN.md on random records.

The reference below is the semantics in a few lines of Python: a path walks objects by key and
walks through arrays (elements that keep nothing are dropped), a shorter path keeps the whole
value, and a copy counts only if it holds a string, number or boolean beyond the key fields.
Records and paths are random but seeded, with awkward keys ("/", "~", quotes, non-ASCII),
nested arrays, nulls and empty containers.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from dataload.lake import Lake
from dataload.lake.filters import sync_services

KEYS = ("a", "b", "c", "d/e", "f~g", 'q"uote', "é")
Tree = dict[str, Any]


def _segment(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def compile_paths(paths: list[str]) -> Tree:
    tree: Tree = {}
    for path in paths:
        segments = [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")]
        node = tree
        for depth, segment in enumerate(segments, 1):
            if node.get(segment) is True:
                break
            if depth == len(segments):
                node[segment] = True
            else:
                node = node.setdefault(segment, {})
    return tree


def walk(value: Any, tree: Tree) -> Any:
    """The part of `value` the tree keeps; None when nothing."""
    if isinstance(value, dict):
        kept = {}
        for key, below in tree.items():
            if key in value:
                part = value[key] if below is True else walk(value[key], below)
                if below is True or part is not None:
                    kept[key] = part
        return kept or None
    if isinstance(value, list):
        return [part for part in (walk(v, tree) for v in value) if part is not None] or None
    return None


def meaningful(value: Any) -> bool:
    if isinstance(value, dict):
        return any(meaningful(v) for v in value.values())
    if isinstance(value, list):
        return any(meaningful(v) for v in value)
    return value is not None


def reference(record: dict[str, Any], paths: list[str], key_fields: set[str]) -> Any:
    kept = walk(record, compile_paths(paths))
    if kept is None or not meaningful({k: v for k, v in kept.items() if k not in key_fields}):
        return None
    return kept


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.35:
        return rng.choice([None, True, False, 0, -7, 2.5, "", "x", 'say "hi"', "ü", {}, []])
    if roll < 0.75:
        return {k: random_value(rng, depth - 1) for k in rng.sample(KEYS, rng.randint(1, 5))}
    return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]


def random_record(rng: random.Random, n: int) -> dict[str, Any]:
    record = {k: random_value(rng, 4) for k in rng.sample(KEYS, rng.randint(2, 6))}
    return {"personid": f"U{n:08d}", **record}


def random_paths(rng: random.Random) -> list[str]:
    paths = [
        "/" + "/".join(_segment(rng.choice(KEYS)) for _ in range(rng.randint(1, 4)))
        for _ in range(rng.randint(1, 4))
    ]
    return ["/personid", *paths] if rng.random() < 0.7 else paths


async def test_filter_record_agrees_with_the_reference(conn):
    rng = random.Random(20261122)
    cases = [(random_record(rng, n), random_paths(rng)) for n in range(300)]

    rows = await conn.fetch(
        "SELECT lake.filter_record(c -> 0, lake.compile_paths('t', ARRAY("
        "    SELECT jsonb_array_elements_text(c -> 1))), '{personid}') AS kept"
        " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(c, n) ORDER BY n",
        orjson.dumps(cases).decode(),
    )

    got = [None if r["kept"] is None else orjson.loads(r["kept"]) for r in rows]
    expected = [reference(record, paths, {"personid"}) for record, paths in cases]
    assert sum(g is not None for g in got) > 100  # the cases exercise both outcomes
    assert got == expected


async def test_every_service_of_a_load_agrees_with_the_reference(lake: Lake, conn):
    rng = random.Random(7)
    services = {f"s{i}": random_paths(rng) for i in range(12)}
    await sync_services(conn, {"person": services})
    records = [random_record(rng, n) for n in range(200)]

    run = await lake.start_run("person")
    await run.load(records)

    rows = await conn.fetch(
        "SELECT service, bu_uid, person_data FROM person_curated.person_data_by_service"
        " WHERE service <> 'full'"
    )
    got = {(r["service"], r["bu_uid"]): orjson.loads(r["person_data"]) for r in rows}
    expected = {
        (service, record["personid"]): kept
        for record in records
        for service, paths in services.items()
        if (kept := reference(record, paths, {"personid"})) is not None
    }
    assert len(expected) > 500
    assert got == expected
