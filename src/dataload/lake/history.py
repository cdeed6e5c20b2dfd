"""A record's history: its versions from raw, and what changed between consecutive ones.

For a tabular domain, a keyed row's versions are its columns; a facts scope's versions (a
month's files) are described by their number, rows and content hash (lake.table_history).

The diff follows the lake's notion of equality: objects are compared key by key, arrays as
multisets (an element that moved is not a change; one that appeared or went is). An element
that went and one that came sharing some fields are shown as one element that changed, under
its position in the newer version.
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
        yield from _diff_arrays(old, new, path)
    elif canonical_json(old) != canonical_json(new):
        yield f"~ {path or '/'}: {_show(old)} -> {_show(new)}"


def _likeness(a: Any, b: Any) -> int:
    """How many top-level fields two objects share with equal values."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return 0
    return sum(1 for k in a.keys() & b.keys() if canonical_json(a[k]) == canonical_json(b[k]))


def _diff_arrays(old: list[Any], new: list[Any], path: str) -> Iterator[str]:
    # Elements present on both sides (as a multiset) did not change, wherever they moved.
    unmatched_new = Counter(canonical_json(e) for e in new)
    gone = []
    for element in old:
        text = canonical_json(element)
        if unmatched_new[text]:
            unmatched_new[text] -= 1
        else:
            gone.append(element)
    came = []
    for element in new:
        text = canonical_json(element)
        if unmatched_new[text]:
            unmatched_new[text] -= 1
            came.append(element)
    # An element that went and one that came sharing fields is one element that changed.
    for before in gone:
        best = max(came, key=lambda after: _likeness(before, after), default=None)
        if best is not None and _likeness(before, best) > 0:
            came.remove(best)
            yield from diff(before, best, f"{path}[{new.index(best)}]")
        else:
            yield f"- {path}[]: {_show(before)}"
    for after in came:
        yield f"+ {path}[]: {_show(after)}"
