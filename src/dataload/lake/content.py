"""Never-store fields: removed from every record before it is stored, whoever hands it over.

A domain names the fields it never stores (person: `ssn`, `sexualOrientation`, `finAid*`), at
any depth, without regard to (ASCII) case, `*` ending a prefix. Walking every record to look for
them would cost as much as the rest of the preparation (about 0.1 ms for a 5 KB person), and the
sources normally strip them already, so the serialised record is searched first (a key always
appears in it as `"name":`, about 10 microseconds): only a record that may hold one is walked,
and the dicts on the way to a removed field copied. The caller's record is never changed. Even
the search is spared for a record whose text equals its stored version (see load.py): what is
stored never holds such a field, so neither does a record with the same text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_DEPTH", "BadContent", "ContentRules"]

#: Levels of nesting the walk follows (orjson refuses to write more than 254 anyway).
MAX_DEPTH = 254


class BadContent(ValueError):
    """A record holds something the lake refuses to store; the message says what."""


class ContentRules:
    """The never-store fields of one domain."""

    def __init__(self, never_store: Iterable[str] = ()) -> None:
        patterns = [p.lower() for p in never_store]
        self._exact = frozenset(p for p in patterns if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
        # Substrings of the lower-cased text that every such key produces ('"ssn":', '"finaid');
        # a string value that merely contains one costs a walk, never a wrong answer.
        self._needles = tuple([f'"{p}":' for p in self._exact] + [f'"{p}' for p in self._prefixes])

    def is_never_store(self, name: Any) -> bool:
        if not isinstance(name, str):
            return False  # not a JSON field name at all: serialising refuses it
        lowered = name.lower()
        return lowered in self._exact or lowered.startswith(self._prefixes)

    def may_hold(self, payload: str) -> bool:
        """Whether the serialised record may hold a never-store field (never a false no)."""
        if not self._needles:
            return False
        lowered = payload.lower()
        return any(needle in lowered for needle in self._needles)

    def clean(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record without its never-store fields; raises BadContent."""
        return self._walk(record, 1)

    def _walk(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise BadContent(f"nested deeper than {MAX_DEPTH} levels")
        if type(value) is dict:
            kept = {k: v for k, v in value.items() if not self.is_never_store(k)}
            changed = len(kept) != len(value)
            for name, item in kept.items():
                if type(item) in (dict, list):
                    new = self._walk(item, depth + 1)
                    changed |= new is not item
                    kept[name] = new
            return kept if changed else value
        items = [self._walk(i, depth + 1) if type(i) in (dict, list) else i for i in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
