"""Reading an answer that is a JSON array of documents, one bad document costing one document.

orjson reads a whole answer or nothing: one `NaN` literal, one document nested past its depth
limit (1024), and the answer is "not valid JSON", however many good documents it holds. So a
body orjson refuses is split into its top-level elements (a scan that follows strings and
brackets, no recursion, no parsing of values) and each element is read on its own: those that
read are kept, the others are named (`personid` found in their text, else their position)
with the reason, never with their content. A body that is not an array, or whose brackets do not
balance (an answer cut short), is refused whole, as before.

The documents kept are also checked without recursion: deeper than `MAX_DEPTH` levels, a
document is unreadable too (the lake would refuse to store it, and walking it recursively
would exhaust Python's stack).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["MAX_DEPTH", "DocumentsRead", "Unreadable", "depth_of", "read_documents"]

#: Levels of nesting a document may have (the lake stores at most this many: orjson refuses to
#: write deeper).
MAX_DEPTH = 254

# A JSON string (escapes included), or one of the characters that shape the array.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_PERSON_ID = re.compile(rb'"personid"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')


@dataclass(frozen=True)
class Unreadable:
    """A document of the answer that could not be read: where, whose, and why (no content)."""

    position: int
    key: str | None
    reason: str


@dataclass
class DocumentsRead:
    documents: list[Any] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def read_documents(body: bytes, *, key_field: bytes = b"personid") -> DocumentsRead:
    """The documents of a JSON array; raises orjson.JSONDecodeError (a ValueError) when the body
    is not a readable array at all."""
    try:
        whole = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        elements = _split_array(body)
        if elements is None:
            raise error from None
        return _read_each(elements, key_field)
    if not isinstance(whole, list):
        return DocumentsRead(documents=whole)  # the caller judges a body that is no array
    return _checked(list(enumerate(whole)), DocumentsRead(), key_field)


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep a decoded JSON value nests (a scalar is 0, `{}` is 1), counted without
    recursion; stops counting past `limit`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            children = item.values()
        elif kind is list:
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return deepest


def _checked(items: list[tuple[int, Any]], read: DocumentsRead, key_field: bytes) -> DocumentsRead:
    for position, document in items:
        if depth_of(document) > MAX_DEPTH:
            key = document.get(key_field.decode()) if type(document) is dict else None
            name = key[:64] if isinstance(key, str) else None
            read.unreadable.append(
                Unreadable(position, name, f"nested deeper than {MAX_DEPTH} levels")
            )
        else:
            read.documents.append(document)
    return read


def _read_each(elements: list[bytes], key_field: bytes) -> DocumentsRead:
    read = DocumentsRead()
    decoded: list[tuple[int, Any]] = []
    for position, text in enumerate(elements):
        try:
            decoded.append((position, orjson.loads(text)))
        except orjson.JSONDecodeError as exc:
            # orjson's message says what and where ("unexpected character ...: line 1 column
            # 7"), never the text itself.
            read.unreadable.append(
                Unreadable(position, _key_in(text, key_field), f"not valid JSON: {exc}")
            )
    return _checked(decoded, read, key_field)


def _key_in(text: bytes, key_field: bytes) -> str | None:
    pattern = _PERSON_ID if key_field == b"personid" else None
    if pattern is None:
        pattern = re.compile(rb'"' + re.escape(key_field) + rb'"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')
    match = pattern.search(text)
    return match[1].decode() if match else None


def _split_array(body: bytes) -> list[bytes] | None:
    """The texts of a JSON array's top-level elements; None when the body is not an array whose
    strings and brackets balance."""
    start = len(body) - len(body.lstrip())
    if body[start : start + 1] != b"[":
        return None
    elements: list[bytes] = []
    depth = 0
    element_start = start + 1
    for token in _TOKEN.finditer(body, start):
        char = token[0][:1]
        if char == b'"':
            continue
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 0:  # the array's closing bracket
                last = body[element_start : token.start()].strip()
                if last:
                    elements.append(last)
                rest = body[token.end() :].strip()
                return elements if not rest and depth == 0 else None
            if depth < 0:
                return None
        elif depth == 1:  # a comma between elements
            elements.append(body[element_start : token.start()].strip())
            element_start = token.end()
    return None
