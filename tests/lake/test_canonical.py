"""Change detection's canonical form: the same in Python and in PostgreSQL, order-blind."""

from __future__ import annotations

import math

import orjson
import pytest

from dataload.lake.canonical import NotCanonicalisable, canonical_json, content_hash

from .people import person, shuffled

AWKWARD = [
    {"b": 1, "a": 2, "é": 3, "e": 4, "ab": 5, "😀": 6, "Z": 7},
    {"text": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode ünï 漢字 😀'},
    {"n": [1, 1.0, 1.5, 1.50, -0.0, 0.0, 1e20, 1e-7, 123456789.125, -3, 2**62]},
    {"nested": [[3, 2], [1], [], [[{"b": 1, "a": [2, 1]}]], {}]},
    {"mixed": [None, True, False, "1", 1, {"x": None}, [None]]},
    {"empty": {}, "list": [], "null": None},
    person(1),
]


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
async def test_python_and_postgresql_compute_the_same_canonical_text_and_hash(conn, value):
    sent = orjson.dumps(value).decode()
    text, hashed = await conn.fetchrow(
        "SELECT lake.canonical_json($1::jsonb), lake.content_hash($1::jsonb)", sent
    )
    assert text == canonical_json(value).decode()
    assert hashed == content_hash(value)


def test_object_key_order_and_array_order_do_not_change_the_hash():
    assert content_hash(person(3)) == content_hash(shuffled(person(3)))


def test_arrays_compare_as_multisets_not_sets():
    assert content_hash({"a": [1, 1, 2]}) != content_hash({"a": [1, 2, 2]})
    assert content_hash({"a": [1, 2]}) != content_hash({"a": [1, 2, 2]})


def test_one_point_zero_equals_one_and_other_numbers_keep_their_value():
    assert canonical_json({"a": 1.0}) == canonical_json({"a": 1}) == b'{"a":1}'
    assert canonical_json([1e20, 1e-7, 2.50]) == b"[0.0000001,100000000000000000000,2.5]"
    assert content_hash({"gpa": 3.5}) != content_hash({"gpa": 3.51})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_rather_than_written_as_null(number):
    with pytest.raises(NotCanonicalisable, match="JSON cannot carry"):
        canonical_json({"a": [1, {"b": number}]})
