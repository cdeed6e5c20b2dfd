"""Turning a batch of records into what the write path sends: pure Python, no database.

Each record is checked (a JSON object, its key fields present and of the right type, content
PostgreSQL can store), its key extracted and its text serialised with sorted keys; the md5 of
that text is its "exact" hash. The text is what is sent: raw strips the domain's never-store
fields itself, and the loader strips its own copy of a record to hash and shape it. NaN and
infinity are refused when the record's content hash is computed (canonical.py), which every
record that is stored goes through. A bad record is set aside with its reason; the others go on.
Records are sorted by key so that concurrent batches take row locks in the same order (no
deadlocks). A record offered twice in one batch, identical, is a repeat (stored once, counted
as repeated); a key offered twice with different records keeps the last, the earlier rejected.

A rejected record is described by its key, its field names and their JSON types, never by its
values (`lake.rejected` and the log are outside the layers, and a record may hold what must
never be stored: a rejected person's `ssn` would otherwise be kept there).

The canonical content hash (canonical.py) costs more and is computed later, only for records
whose exact hash differs from the current version's (see load.py).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from dataload.lake.content import MAX_DEPTH, BadContent, ContentRules
from dataload.lake.domains import Domain

__all__ = ["PreparedBatch", "Rejection", "prepare_batch"]

SAMPLE_CHARS = 300
_INT64 = range(-(2**63), 2**63)
# A JSON "\u0000" escape (preceded by an even number of backslashes): jsonb cannot store it.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Rejection:
    reason: str
    sample: str


@dataclass
class PreparedBatch:
    offered: int = 0
    #: Records equal to one earlier in the batch (the same key and text): stored once.
    repeated: int = 0
    # Parallel lists, sorted by key, one entry per distinct key the batch offers (records
    # rejected for their content included, so that a complete snapshot does not delete them:
    # their exact hash, payload and record are None).
    keys: list[Key] = field(default_factory=list)
    exact_hashes: list[uuid.UUID | None] = field(default_factory=list)
    payloads: list[str | None] = field(default_factory=list)
    records: list[dict[str, Any] | None] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def valid(self) -> int:
        """Records that may be stored: one per key, repeats and rejections left out."""
        return sum(1 for h in self.exact_hashes if h is not None)

    def strip(self, positions: Iterable[int], rules: ContentRules) -> None:
        """Remove the never-store fields from these records (those about to be hashed and shaped:
        what raw will store). Their text stays as it was given: that is what is sent, raw strips
        it itself and keeps its md5, so that the same text given again is recognised as
        unchanged without being stripped again (load.py)."""
        for i in positions:
            payload, record = self.payloads[i], self.records[i]
            if payload is None or record is None or not rules.may_hold(payload):
                continue
            try:
                self.records[i] = rules.clean(record)
            except ValueError as exc:  # BadContent included
                self.refuse(i, f"content refused: {exc}")

    def replace(self, position: int, record: dict[str, Any]) -> None:
        """Store `record` in place of the one offered (a contract dropped values from it)."""
        text = _payload(record)
        self.records[position], self.payloads[position] = record, text.decode()
        self.exact_hashes[position] = uuid.UUID(bytes=hashlib.md5(text).digest())

    def refuse(self, position: int, reason: str) -> None:
        """Set aside a record found unstorable after preparation (its content hash could not
        be computed); its key stays offered, like any record rejected for its content."""
        record = self.records[position]
        self.rejections.append(Rejection(reason, _sample(record, self.keys[position])))
        self.exact_hashes[position] = None


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
_SAMPLE_FIELDS = 40


def _sample(record: Any, key: Key | None = None) -> str:
    """What a rejection keeps of a record: its key (when it has a valid one), its top-level field
    names and their JSON types; no value."""
    if not isinstance(record, dict):
        return orjson.dumps({"type": type(record).__name__}).decode()
    fields = {
        str(name)[:64]: _JSON_TYPES.get(
            type(value), "number" if isinstance(value, int | float) else type(value).__name__
        )
        for name, value in list(record.items())[:_SAMPLE_FIELDS]
    }
    shape = {"key": list(key) if key is not None else None, "fields": fields}
    if len(record) > _SAMPLE_FIELDS:
        shape["more_fields"] = len(record) - _SAMPLE_FIELDS
    return orjson.dumps(shape, default=str).decode()[:SAMPLE_CHARS]


def _key_error(domain: Domain, record: dict[str, Any]) -> str | None:
    for field_name, kind in zip(domain.key_fields, domain.key_types, strict=True):
        value = record.get(field_name)
        if value is None or value == "":
            return f"missing key field {field_name!r}"
        if type(value) is str and not value.strip():
            return f"blank key field {field_name!r}"
        if kind == "bigint":
            if type(value) is not int or value not in _INT64:
                return f"key field {field_name!r} must be an integer, got {type(value).__name__}"
        elif type(value) is not str:
            return f"key field {field_name!r} must be a string, got {type(value).__name__}"
        elif "\x00" in value:
            return f"key field {field_name!r} contains a NUL character"
    return None


def _payload(record: dict[str, Any]) -> bytes:
    """The record's text, keys sorted; raises ValueError for what jsonb cannot store."""
    try:
        payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        if "recursion limit" in str(exc).lower():
            raise BadContent(f"nested deeper than {MAX_DEPTH} levels") from None
        raise ValueError(str(exc)) from None
    if b"\\u0000" in payload and _NUL_ESCAPE.search(payload):
        raise ValueError("a string contains a NUL character, which jsonb cannot store")
    return payload


def prepare_batch(domain: Domain, records: Iterable[Any]) -> PreparedBatch:
    batch = PreparedBatch()
    by_key: dict[Key, tuple[uuid.UUID | None, str | None, dict[str, Any] | None]] = {}
    for record in records:
        batch.offered += 1
        if not isinstance(record, dict):
            reason = f"not a JSON object but {type(record).__name__}"
            batch.rejections.append(Rejection(reason, _sample(record)))
            continue
        problem = _key_error(domain, record)
        if problem:
            batch.rejections.append(Rejection(problem, _sample(record)))
            continue
        key = tuple(record[f] for f in domain.key_fields)
        try:
            payload = _payload(record)
        except BadContent as exc:
            batch.rejections.append(Rejection(f"content refused: {exc}", _sample(record, key)))
            by_key[key] = (None, None, None)
            continue
        except ValueError as exc:
            reason = f"content cannot be stored: {exc}"
            batch.rejections.append(Rejection(reason, _sample(record, key)))
            by_key[key] = (None, None, None)
            continue
        exact = uuid.UUID(bytes=hashlib.md5(payload).digest())
        if key in by_key:
            if by_key[key][0] == exact:  # the same record again: stored once
                batch.repeated += 1
                continue
            batch.rejections.append(
                Rejection(
                    f"key {key} offered again in the same batch with other content; only the "
                    "last record of a key is loaded",
                    _sample(by_key[key][2], key),
                )
            )
        by_key[key] = (exact, payload.decode(), record)
    for key in sorted(by_key):
        exact, payload, record = by_key[key]
        batch.keys.append(key)
        batch.exact_hashes.append(exact)
        batch.payloads.append(payload)
        batch.records.append(record)
    return batch
