"""What a record may hold before it is stored, whoever hands it to the lake.

One walk over each record, before it is serialised:
- the domain's never-store fields (person: `ssn`, `sexualOrientation`, `finAid*`) are removed at
  any depth; the caller's record is not changed, only the dicts on the way to a removed field are
  copied;
- NaN and infinity are refused: JSON cannot carry them (orjson would write null, silently);
- nesting deeper than `MAX_DEPTH` is refused, before anything recursive (orjson, repr) fails on it.

A source with many records reuses a few hundred field names, so each name is judged once and
remembered; a dict is then checked with set operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_DEPTH", "BadContent", "ContentRules"]

#: Levels of nesting a record may have (orjson refuses to write more than 254).
MAX_DEPTH = 200
#: Field names remembered; only guards against a source with unbounded field names.
_REMEMBERED = 100_000


class BadContent(ValueError):
    """A record holds something the lake refuses to store; the message says what."""


class ContentRules:
    """The checks of one domain, with its never-store field patterns."""

    def __init__(self, never_store: Iterable[str] = ()) -> None:
        patterns = [p.casefold() for p in never_store]
        self._exact = frozenset(p for p in patterns if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
        self._kept: set[Any] = set()
        self._dropped: set[Any] = set()

    def is_never_store(self, name: Any) -> bool:
        if not isinstance(name, str):
            return False  # not a JSON field name at all: serialising refuses it later
        folded = name.casefold()
        return folded in self._exact or folded.startswith(self._prefixes)

    def clean(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record without its never-store fields; raises BadContent."""
        return self._dict(record, 1)

    def _learn(self, names: set[Any]) -> None:
        if len(self._kept) > _REMEMBERED:
            self._kept.clear()
        for name in names:
            (self._dropped if self.is_never_store(name) else self._kept).add(name)

    def _dict(self, value: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise BadContent(f"nested deeper than {MAX_DEPTH} levels")
        names = value.keys()
        if not names <= self._kept:
            self._learn(names - self._kept)
        out = None
        if self._dropped and not self._dropped.isdisjoint(names):
            out = {k: v for k, v in value.items() if k not in self._dropped}
        for name, item in (value if out is None else out).items():
            kind = type(item)
            if kind is dict:
                new = self._dict(item, depth + 1)
            elif kind is list or kind is tuple:
                new = self._list(item, depth + 1)
            else:
                if kind is float and not math.isfinite(item):
                    raise BadContent(f"field {name!r} is {item}, which JSON cannot carry")
                continue
            if new is not item:
                if out is None:
                    out = dict(value)
                out[name] = new
        return value if out is None else out

    def _list(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise BadContent(f"nested deeper than {MAX_DEPTH} levels")
        out = None
        for i, item in enumerate(value):
            kind = type(item)
            if kind is dict:
                new = self._dict(item, depth + 1)
            elif kind is list or kind is tuple:
                new = self._list(item, depth + 1)
            else:
                if kind is float and not math.isfinite(item):
                    raise BadContent(f"a list holds {item}, which JSON cannot carry")
                continue
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        return value if out is None else out
