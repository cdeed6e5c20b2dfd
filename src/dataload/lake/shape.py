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

The loader does not walk a record twice: `hashed_shape` computes the content hash
(canonical.py's text, byte for byte) and the shape in one walk, which describes an object or an
array once per structure (its path, keys and value types) and a record once per set of such
structures. On a 5 KB person that costs about 25 us more than the content hash alone (whose
~52 us the record pays anyway), in the thread that hashes the next chunk while PostgreSQL
propagates the previous one (load.py). An unchanged reload walks nothing, and when its run
finds the live records' contents as an earlier run left them (a sum of their content hashes,
R__shapes.sql) it copies that run's tally instead of counting again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from dataload.lake.canonical import _REWRITTEN, _SORT, NotCanonicalisable, _number, content_hash

if TYPE_CHECKING:
    from dataload.lake.batch import PreparedBatch

__all__ = [
    "ON_BREAK",
    "Contract",
    "ContractBroken",
    "Rule",
    "RunShapes",
    "hashed_shape",
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


def _shape(entries: frozenset[str]) -> Shape:
    shape = _shapes.get(entries)
    if shape is None:
        ordered = tuple(sorted(entries))
        shape_id = uuid.UUID(bytes=hashlib.md5("\n".join(ordered).encode()).digest())
        if len(_shapes) >= _MEMO_LIMIT:
            _shapes.clear()
        shape = _shapes[entries] = Shape(shape_id, ordered)
    return shape


def record_shape(record: dict[str, Any]) -> Shape:
    """The shape of one record (see the module docstring)."""
    return _shape(_entries(record))


class _Structure:
    """An object or array structure met at a path: the entries it gives the shape, and what
    the walk does below it. Hashed by identity: a record's set of them is cheap to build."""

    __slots__ = ("below", "entries", "members")

    def __init__(self, entries: list[str], members: tuple[Any, ...] = (), below: str = "") -> None:
        self.entries = entries
        #: An object's members the canonical text rewrites: (key, path, type), for objects,
        #: arrays and floats (canonical.py).
        self.members = members
        #: An array: its elements' path.
        self.below = below


#: Objects wider than this are described each time, not remembered (nor the records holding
#: them): a map keyed by ids would fill the memos with structures met once.
_MEMO_WIDTH = 100
# (path, *keys, *value types) of an object, (path, element types) of an array -> _Structure.
# A key is a str and a type is not, so the two runs of an object's signature cannot be confused.
_objects_seen: dict[tuple[Any, ...], _Structure] = {}
_arrays_seen: dict[tuple[str, frozenset[type]], _Structure] = {}
# The set of structures a record holds -> its shape.
_records_seen: dict[frozenset[_Structure], Shape] = {}
# Met by a record holding an object described, not remembered: its shape is not remembered.
_UNREMEMBERED = _Structure([])


def _describe(node: dict[str, Any], path: str) -> _Structure:
    entries, members = [], []
    for key, value in node.items():
        here = f"{path}/{_segment(key)}"
        entries.append(f"{here}\t{_type(value)}")
        if type(value) in _REWRITTEN:
            members.append((key, here, type(value)))
    return _Structure(entries, tuple(members))


def _object(node: dict[str, Any], path: str, met: Any) -> Any:
    """The object as canonical.py rewrites it for its text; `met` is told its structures."""
    if len(node) > _MEMO_WIDTH:
        known = _describe(node, path)
        met(_UNREMEMBERED)
    else:
        signature = (path, *node, *map(type, node.values()))
        known = _objects_seen.get(signature)
        if known is None:
            known = _objects_seen[signature] = _describe(node, path)
    met(known)
    if not known.members:
        return node
    rewritten = node.copy()
    for key, here, kind in known.members:
        value = node[key]
        if kind is dict:
            rewritten[key] = _object(value, here, met)
        elif kind is float:
            rewritten[key] = _number(value)
        else:
            rewritten[key] = _array(value, here, met)
    return rewritten


def _array(node: list[Any] | tuple[Any, ...], path: str, met: Any) -> orjson.Fragment:
    """The array's canonical text (its elements' texts sorted), as canonical.py writes it."""
    signature = (path, frozenset(map(type, node)))
    known = _arrays_seen.get(signature)
    if known is None:
        here = path + "[]"
        entries = sorted({f"{here}\t{_type(value)}" for value in node})
        known = _arrays_seen[signature] = _Structure(entries, below=here)
    met(known)
    here = known.below
    texts = []
    for value in node:
        kind = type(value)
        if kind is dict:
            value = _object(value, here, met)
        elif kind is list or kind is tuple:
            value = _array(value, here, met)
        elif kind is float:
            value = _number(value)
        texts.append(orjson.dumps(value, option=_SORT))
    texts.sort()
    return orjson.Fragment(b"[" + b",".join(texts) + b"]")


def hashed_shape(record: dict[str, Any]) -> tuple[uuid.UUID, Shape]:
    """The record's content hash (`canonical.content_hash`) and its shape (`record_shape`),
    from one walk; raises NotCanonicalisable as content_hash does."""
    if type(record) is not dict:
        return content_hash(record), record_shape(record)
    if max(len(_objects_seen), len(_arrays_seen), len(_records_seen)) >= _MEMO_LIMIT:
        _objects_seen.clear()
        _arrays_seen.clear()
        _records_seen.clear()
    met: set[_Structure] = set()
    try:
        text = orjson.dumps(_object(record, "", met.add), option=_SORT)
    except orjson.JSONEncodeError as exc:
        raise NotCanonicalisable(str(exc)) from None
    structures = frozenset(met)
    shape = _records_seen.get(structures)
    if shape is None:
        shape = _shape(frozenset().union(*(s.entries for s in structures)))
        if _UNREMEMBERED not in structures:
            _records_seen[structures] = shape
    return uuid.UUID(bytes=hashlib.md5(text).digest()), shape


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
        self._reading: asyncio.Future[None] | None = None
        #: Shapes the lake holds (committed by an earlier batch of this run).
        self._kept: set[uuid.UUID] = set()
        #: discard_value: values dropped, per reason.
        self.discarded: Counter[str] = Counter()

    async def prepare(self, pool: asyncpg.Pool) -> None:
        """Read the domain's contract, once per run, on a connection of the pool: the batches
        that ask while it is read wait for the same read (one that failed is tried again)."""
        if self._prepared or not self.enabled:
            return
        reading = self._reading
        if reading is None or (
            reading.done() and (reading.cancelled() or reading.exception() is not None)
        ):
            reading = self._reading = asyncio.ensure_future(self._read_contract(pool))
        await asyncio.shield(reading)

    async def _read_contract(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
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

    def content_hash(self, position: int) -> uuid.UUID:
        """The content hash of this record (canonical.py); with shapes tracked, its shape is
        kept from the same walk (`hashed_shape`)."""
        record = self._batch.records[position]
        if not self._run.enabled:
            return content_hash(record)
        digest, self._shapes[position] = hashed_shape(record)
        return digest

    def observe(self, positions: Iterable[int]) -> None:
        """Shape these records (those not shaped yet), without hashing them: a contract
        judges records before they are hashed."""
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
