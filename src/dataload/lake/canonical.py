"""Canonical JSON and content hashes: how the lake decides that a record has not changed.

Two records are equal when their canonical texts are equal. The canonical text is compact JSON
in which object keys are sorted, the elements of every array are sorted by their own canonical
text (arrays compare as multisets: a source that shuffles lists creates no history), and
numbers are plain decimals without trailing zeros (1.0 equals 1, as jsonb equality says).
Sorting is by UTF-8 bytes, i.e. code point order. The content hash is the md5 of that text.

This module and the SQL function `lake.canonical_json` produce the same text (the tests hold
them to it): the loader hashes here, psql writes are hashed by the raw table's trigger. With
shapes tracked the loader hashes with `shape.hashed_shape`, which writes the same text in a walk
of its own that also gives the record's shape: a change here is a change there (tests/lake/
test_shapes.py holds them to the same hashes).

Why it is cheap:
- A record sent again exactly as before never gets here: the loader first compares the md5 of
  the record's plain serialisation (keys sorted, see batch.py) with the one the lake stored on
  xform, and only records whose text differs are canonicalised.
- Canonicalising leaves the heavy lifting to orjson (C): the Python walk only copies the dicts
  that hold arrays or floats, turns each array into an `orjson.Fragment` of its already
  canonical bytes (each element is serialised once) and each float into a fragment of its
  decimal text. About 0.1 ms for a 5 KB person.
- The lake compares what it stores by jsonb equality; it canonicalises, in SQL, only a record
  that holds the same elements as its current version in another order.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["NotCanonicalisable", "canonical_json", "content_hash"]

_SORT = orjson.OPT_SORT_KEYS


class NotCanonicalisable(ValueError):
    """The value holds something JSON cannot carry (a non-JSON type, an int beyond 64 bits)."""


def _number(value: float) -> orjson.Fragment:
    # repr() is the shortest text that reads back as the same float, which is also what orjson
    # sends to PostgreSQL. Without an exponent it only needs ".0" dropped (3.0 -> 3).
    text = repr(value)
    if "e" in text or "n" in text:  # 1e-07, 1e+20, nan, inf
        if not math.isfinite(value):
            # JSON has no NaN or infinity (orjson would write null, silently): refused.
            raise NotCanonicalisable(f"a number is {value}, which JSON cannot carry")
        text = format(Decimal(text).normalize(), "f")
    elif text.endswith(".0"):
        text = text[:-2]
    return orjson.Fragment("0" if text == "-0" else text)


# Values the walk must rewrite; every other value is left to orjson as it is.
_REWRITTEN = frozenset({dict, list, tuple, float})


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        rewritten = None  # a copy only when something inside must change
        for key, item in value.items():
            if type(item) in _REWRITTEN:
                if rewritten is None:
                    rewritten = value.copy()
                rewritten[key] = _canonical(item)
        return value if rewritten is None else rewritten
    if kind is list or kind is tuple:
        elements = sorted(
            [
                orjson.dumps(_canonical(item) if type(item) in _REWRITTEN else item, option=_SORT)
                for item in value
            ]
        )
        return orjson.Fragment(b"[" + b",".join(elements) + b"]")
    if kind is float:
        return _number(value)
    return value


def canonical_json(value: Any) -> bytes:
    """The canonical text of a JSON value (see the module docstring)."""
    try:
        return orjson.dumps(_canonical(value), option=_SORT)
    except orjson.JSONEncodeError as exc:
        raise NotCanonicalisable(str(exc)) from None


def content_hash(value: Any) -> uuid.UUID:
    """md5 of the canonical text, as PostgreSQL's `lake.content_hash()` computes it."""
    return uuid.UUID(bytes=hashlib.md5(canonical_json(value)).digest())
