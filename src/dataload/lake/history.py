"""A record's history: its versions from raw, and what changed between consecutive ones.

The diff follows the lake's notion of equality: objects are compared key by key, arrays as
multisets (an element that moved is not a change; one that appeared or went is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dataload.lake.canonical import canonical_json

__all__ = ["Version", "diff", "record_history"]


@dataclass(frozen=True)
class Version:
    raw_id: int
    data: dict[str, Any] | None  # None: the key was deleted
    deleted: bool
    run_id: int | None
    valid_from: datetime
    valid_to: datetime | None


async def record_history(conn: asyncpg.Connection, domain: str, key: list[Any]) -> list[Version]:
    """Every version of one key, oldest first (empty when the key was never loaded)."""
    rows = await conn.fetch(
        "SELECT raw_id, data, deleted, run_id, valid_from, valid_to"
        " FROM lake.history($1, $2::jsonb)",
        domain,
        orjson.dumps(key).decode(),
    )
    return [
        Version(
            r["raw_id"],
            orjson.loads(r["data"]) if r["data"] is not None else None,
            r["deleted"],
            r["run_id"],
            r["valid_from"],
            r["valid_to"],
        )
        for r in rows
    ]


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


def diff(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """Lines '+ /path: value', '- /path: value', '~ /path: old -> new' from old to new."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            where = f"{path}/{key}"
            if key not in new:
                yield f"- {where}: {_show(old[key])}"
            elif key not in old:
                yield f"+ {where}: {_show(new[key])}"
            else:
                yield from diff(old[key], new[key], where)
    elif isinstance(old, list) and isinstance(new, list):
        before = Counter(canonical_json(e) for e in old)
        after = Counter(canonical_json(e) for e in new)
        for element in sorted((before - after).elements()):
            yield f"- {path}[]: {_show(orjson.loads(element))}"
        for element in sorted((after - before).elements()):
            yield f"+ {path}[]: {_show(orjson.loads(element))}"
    elif canonical_json(old) != canonical_json(new):
        yield f"~ {path or '/'}: {_show(old)} -> {_show(new)}"
