"""The shape of documents: which JSON paths a record holds and of which types; contracts on it.

A record's shape is the set of its (path, type) entries. A path is a service filter's path
(`/personBasic/birthDate`, keys escaped as in JSON Pointer: `~0` for `~`, `~1` for `/`) with
`[]` after a segment whose value is an array, for its elements: `/email` is an array,
`/email[]` an object, `/email[]/address` a string. Types are JSON's: object, array, string,
number, boolean, null. A shape's id is the md5 of its sorted "path<TAB>type" entries joined by
newlines; the SQL function `lake.json_shape` computes the same (the tests hold them to it).

The loader shapes only the records it stores (new and changed ones): a record whose content is
unchanged keeps the shape it had, by content hash (`lake.content_shapes`). When the run
finishes, the lake tallies the shapes of the live records and compares the tally with the
domain's last accepted shape (R__shapes.sql): that is drift, and the services it breaks.

A contract (lake.shape_contracts, `dataload schema <domain> --require/--freeze`) makes paths
required (a value, not null, in every record) or their types frozen (the types the last accepted
shape had at the path and below it; a path new below a frozen one breaks it too). What a record
that breaks one costs is said in dlt's words: `freeze` fails the run (its batch is rolled back),
`discard_row` rejects the record with its reason, `discard_value` drops the offending values
and stores the rest (a required value that is absent cannot be discarded: the record is
rejected). Without a contract the shape evolves, and drift is reported.

Walking a 5 KB person costs about as much as canonicalising it; the loader does it while
PostgreSQL propagates the previous chunk (load.py), so a first load pays little for it and an
unchanged reload nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

if TYPE_CHECKING:
    from dataload.lake.batch import PreparedBatch

__all__ = [
    "ON_BREAK",
    "Contract",
    "ContractBroken",
    "Rule",
    "RunShapes",
    "record_shape",
    "service_path",
]

#: What breaking a contract costs, in dlt's schema-contract words (evolve is no contract).
ON_BREAK = ("freeze", "discard_row", "discard_value")

_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    tuple: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}
_NESTED = frozenset({"object", "array"})


class ContractBroken(RuntimeError):
    """A record broke a contract whose rule is `freeze`: the batch was rolled back."""


def _type(value: Any) -> str:
    return _TYPES.get(type(value)) or ("number" if isinstance(value, int | float) else "string")


def _segment(key: str) -> str:
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


#: Memos bounded so that a source with ever new keys cannot grow them without end.
_MEMO_LIMIT = 20_000
# (path, keys, value types) of an object -> its own entries and its nested members: objects of
# one structure (the classes of every semester, every person's name) are described once.
_objects: dict[tuple[Any, ...], tuple[list[str], list[tuple[str, str]]]] = {}


def _entries(record: dict[str, Any]) -> frozenset[str]:
    """The record's "path<TAB>type" entries, walked without recursion."""
    entries: set[str] = set()
    update, add = entries.update, entries.add
    stack: list[tuple[str, Any]] = [("", record)]
    pop, push = stack.pop, stack.append
    memo = _objects
    while stack:
        path, node = pop()
        if type(node) is dict:
            signature = (path, tuple(node), tuple(map(type, node.values())))
            known = memo.get(signature)
            if known is None:
                own: list[str] = []
                nested: list[tuple[str, str]] = []
                for key, value in node.items():
                    here = f"{path}/{_segment(key)}"
                    kind = _type(value)
                    own.append(f"{here}\t{kind}")
                    if kind in _NESTED:
                        nested.append((here, key))
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                known = memo[signature] = (own, nested)
            update(known[0])
            for here, key in known[1]:
                value = node[key]
                if value:
                    push((here, value))
        else:
            here = path + "[]"
            for value in node:
                kind = _type(value)
                add(f"{here}\t{kind}")
                if kind in _NESTED and value:
                    push((here, value))
    return frozenset(entries)


@dataclass(frozen=True)
class Shape:
    id: uuid.UUID
    entries_text: tuple[str, ...]  # sorted "path<TAB>type"

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(e.split("\t")[0] for e in self.entries_text)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(e.split("\t")[1] for e in self.entries_text)

    def entries(self) -> Iterable[tuple[str, str]]:
        return zip(self.paths, self.types, strict=True)


# entries -> Shape: records of one shape are sorted and hashed once.
_shapes: dict[frozenset[str], Shape] = {}


def record_shape(record: dict[str, Any]) -> Shape:
    """The shape of one record (see the module docstring)."""
    entries = _entries(record)
    shape = _shapes.get(entries)
    if shape is None:
        ordered = tuple(sorted(entries))
        shape_id = uuid.UUID(bytes=hashlib.md5("\n".join(ordered).encode()).digest())
        if len(_shapes) >= _MEMO_LIMIT:
            _shapes.clear()
        shape = _shapes[entries] = Shape(shape_id, ordered)
    return shape


def service_path(path: str) -> str:
    """A shape path as a service filter names it: arrays are walked through."""
    return path.replace("[]", "")


def _within(path: str, top: str) -> bool:
    plain = service_path(path)
    return plain == top or plain.startswith(top + "/")


@dataclass(frozen=True)
class Rule:
    owner: str  # the domain, or the service that declared the rule
    path: str
    rule: str  # required, frozen
    on_break: str  # freeze, discard_row, discard_value
    #: frozen: the accepted types at the path and below it; None before any accepted shape.
    accepted: dict[str, frozenset[str]] | None = None


@dataclass(frozen=True)
class Break:
    rule: Rule
    reason: str
    #: discard_value: the (path, type) entries whose values go.
    entries: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Contract:
    rules: list[Rule]
    _verdicts: dict[uuid.UUID, list[Break]] = field(default_factory=dict)

    def breaks(self, shape: Shape) -> list[Break]:
        """The rules a record of this shape breaks (cached per shape: records share shapes)."""
        found = self._verdicts.get(shape.id)
        if found is None:
            found = self._verdicts[shape.id] = [b for r in self.rules for b in _check(r, shape)]
        return found


def _check(rule: Rule, shape: Shape) -> list[Break]:
    owner = f"contract of {rule.owner}"
    if rule.rule == "required":
        held = [t for p, t in shape.entries() if service_path(p) == rule.path]
        if any(t != "null" for t in held):
            return []
        return [Break(rule, f"{owner}: {rule.path} is required and {'null' if held else 'absent'}")]
    if rule.accepted is None:  # nothing accepted yet: the first shape evolves
        return []
    broken = []
    for path, kind in shape.entries():
        if kind == "null" or not _within(path, rule.path):
            continue
        allowed = rule.accepted.get(path)
        if allowed is None:
            reason = f"{owner}: {path} ({kind}) is new below frozen {rule.path}"
        elif kind not in allowed:
            was = " or ".join(sorted(allowed - {"null"})) or "null"
            reason = f"{owner}: {path} is frozen as {was}, got {kind}"
        else:
            continue
        broken.append(Break(rule, reason, frozenset({(path, kind)})))
    return broken


def _discard(value: Any, entries: frozenset[tuple[str, str]], path: str = "") -> Any:
    """The value without those (path, type) entries' values; containers copied on the way."""
    if type(value) is dict:
        kept = {}
        for key, item in value.items():
            here = f"{path}/{_segment(key)}"
            if (here, _type(item)) in entries:
                continue
            kept[key] = _discard(item, entries, here) if type(item) in (dict, list) else item
        return kept
    here = path + "[]"
    return [
        _discard(item, entries, here) if type(item) in (dict, list) else item
        for item in value
        if (here, _type(item)) not in entries
    ]


class RunShapes:
    """A run's shapes: each stored record's, its contract, what the contract discarded."""

    def __init__(self, domain: str, *, enabled: bool = True) -> None:
        self.domain = domain
        self.enabled = enabled
        self.contract: Contract | None = None
        self._prepared = False
        #: Shapes the lake holds (committed by an earlier batch of this run).
        self._kept: set[uuid.UUID] = set()
        #: discard_value: values dropped, per reason.
        self.discarded: Counter[str] = Counter()

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Read the domain's contract, once per run."""
        if self._prepared or not self.enabled:
            return
        rows = await conn.fetch(
            "SELECT owner, path, rule, on_break, accepted::text FROM lake.shape_contract($1)",
            self.domain,
        )
        rules = [
            Rule(
                r["owner"],
                r["path"],
                r["rule"],
                r["on_break"],
                None
                if r["accepted"] is None
                else {p: frozenset(t) for p, t in orjson.loads(r["accepted"]).items()},
            )
            for r in rows
        ]
        self.contract = Contract(rules) if rules else None
        self._prepared = True

    def batch(self, batch: PreparedBatch) -> BatchShapes:
        return BatchShapes(self, batch)

    def notes(self) -> list[str]:
        """The run's discarded values, in words, for its schema changes."""
        return [
            f"{reason}: {n:,} value{'s' if n != 1 else ''} discarded"
            for reason, n in sorted(self.discarded.items())
        ]


class BatchShapes:
    """The shapes of one batch's stored records, by position in the batch."""

    def __init__(self, run: RunShapes, batch: PreparedBatch) -> None:
        self._run = run
        self._batch = batch
        self._shapes: dict[int, Shape] = {}

    def observe(self, positions: Iterable[int]) -> None:
        """Shape these records (those not shaped yet)."""
        if not self._run.enabled:
            return
        records, shapes = self._batch.records, self._shapes
        for i in positions:
            record = records[i]
            if i not in shapes and record is not None:
                shapes[i] = record_shape(record)

    def enforce(self, positions: list[int]) -> None:
        """Apply the contract to these records: raise for a `freeze` rule, refuse a record for
        `discard_row` (`batch.refuse`), drop values for `discard_value`."""
        contract = self._run.contract
        if contract is None:
            return
        batch = self._batch
        self.observe(positions)
        for i in positions:
            shape = self._shapes.get(i)
            if shape is None or batch.exact_hashes[i] is None:
                continue
            broken = contract.breaks(shape)
            if not broken:
                continue
            key = "/".join(str(k) for k in batch.keys[i])
            frozen = [b for b in broken if b.rule.on_break == "freeze"]
            if frozen:
                raise ContractBroken(
                    f"{self._run.domain} record {key}: {frozen[0].reason} (the contract freezes "
                    "it: the batch was rolled back and the run stops)"
                )
            rejecting = [
                b for b in broken if b.rule.on_break == "discard_row" or not b.entries
            ]  # a missing value cannot be discarded
            if rejecting:
                batch.refuse(i, "; ".join(sorted({b.reason for b in rejecting})))
                continue
            entries = frozenset().union(*(b.entries for b in broken))
            record = _discard(batch.records[i], entries)
            batch.replace(i, record)
            self._shapes[i] = record_shape(record)
            for b in broken:
                self._run.discarded[b.reason] += 1

    async def keep(
        self, conn: asyncpg.Connection, positions: Iterable[int], hashes: dict[int, Any]
    ) -> list[uuid.UUID]:
        """Tell the lake the shapes of these stored records; returns the shapes it was given,
        which `committed` marks as kept once the batch's transaction committed."""
        if not self._run.enabled:
            return []
        pairs = [
            (hashes[i], self._shapes[i])
            for i in positions
            if hashes.get(i) is not None and i in self._shapes
        ]
        if not pairs:
            return []
        new = {s.id: s for _, s in pairs if s.id not in self._run._kept}
        defs = {str(k): {"paths": s.paths, "types": s.types} for k, s in new.items()}
        await conn.execute(
            "SELECT lake.keep_shapes($1::uuid[], $2::uuid[], $3::jsonb)",
            [h for h, _ in pairs],
            [s.id for _, s in pairs],
            orjson.dumps(defs).decode(),
        )
        return list(new)

    def committed(self, shapes: Iterable[uuid.UUID]) -> None:
        self._run._kept.update(shapes)
