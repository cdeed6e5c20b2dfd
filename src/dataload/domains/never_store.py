"""Removing a domain's never-store fields from records, at any depth, before they are loaded.

A pattern is a field name ('ssn') or a prefix ending in '*' ('finAid*'), compared without
regard to case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["field_stripper"]


def field_stripper(patterns: Sequence[str]) -> Callable[[Any], None] | None:
    """A function that removes matching fields from a decoded JSON value in place (None when
    there is nothing to remove)."""
    names = {p.casefold() for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1].casefold() for p in patterns if p.endswith("*"))
    if not names and not prefixes:
        return None

    def banned(name: str) -> bool:
        folded = name.casefold()
        return folded in names or (bool(prefixes) and folded.startswith(prefixes))

    def strip(value: Any) -> None:
        if isinstance(value, dict):
            for name in [name for name in value if banned(name)]:
                del value[name]
            for item in value.values():
                strip(item)
        elif isinstance(value, list):
            for item in value:
                strip(item)

    return strip
