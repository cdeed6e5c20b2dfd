"""One bad person document costs that person, not the answer: NaN, nesting past any limit, a
document that is not an object. Over a real socket, from the scripted server."""

from __future__ import annotations

import pytest
from tests.sources.scripted_http import FAST_RETRY, ScriptedServer, Step

from dataload.sources import SnapLogicPersons
from dataload.sources.documents import MAX_DEPTH, depth_of, read_documents
from dataload.sources.snaplogic import strip_sensitive


def persons(base_url: str) -> SnapLogicPersons:
    return SnapLogicPersons(
        url=f"{base_url}/snaplogic/person", key="k", cs_env="qas", retry=FAST_RETRY
    )


def nested(levels: int) -> str:
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


ASKED = [{"CAMPUS_ID": f"U{n}"} for n in range(1, 5)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"personid":"U2","finAidAward":NaN,"ssn":"BAD-SSN-1"}', "not valid JSON"),
        ('{"personid":"U2","deep":' + nested(100_000) + "}", "not valid JSON: depth limit"),
        ('{"personid":"U2","deep":' + nested(1_000) + "}", f"nested deeper than {MAX_DEPTH}"),
    ],
    ids=["nan", "100000-deep", "1000-deep"],
)
async def test_an_unreadable_document_is_named_and_the_rest_of_the_answer_loads(
    scripted: ScriptedServer, bad: str, reason: str
):
    body = f'[{{"personid":"U1","ssn":"x"}}, {bad}, {{"personid":"U3"}}, {{"personid":"U4"}}]'
    scripted.reset(Step(200, body=body))
    async with persons(scripted.base_url) as api:
        batch = await api.persons(ASKED)
    assert [r["personid"] for r in batch.records] == ["U1", "U3", "U4"]
    assert batch.records[0] == {"personid": "U1"}  # still sanitised
    assert [(u.key, u.reason.startswith(reason)) for u in batch.unreadable] == [("U2", True)]
    assert "BAD-SSN" not in repr(batch.unreadable)
    assert len(scripted.received) == 1  # not retried: the answer was read


async def test_a_document_that_is_not_an_object_is_set_aside(scripted: ScriptedServer):
    scripted.reset(Step(json=[{"personid": "U1"}, "U2", [1, 2], {"personid": "U3"}]))
    async with persons(scripted.base_url) as api:
        batch = await api.persons(ASKED)
    assert [r["personid"] for r in batch.records] == ["U1", "U3"]
    assert [u.reason for u in batch.unreadable] == [
        "a str where a person document belongs",
        "a list where a person document belongs",
    ]


async def test_an_answer_cut_short_is_still_refused_whole_and_retried(scripted: ScriptedServer):
    scripted.reset(Step(200, body='[{"personid":"U1"}, {"personid":"U2", "x": [NaN'))
    scripted.default = Step(json=[{"personid": "U1"}])
    async with persons(scripted.base_url) as api:
        batch = await api.persons(ASKED[:1])
    assert batch.records == [{"personid": "U1"}]
    assert len(scripted.received) == 2


def test_strings_holding_brackets_and_commas_do_not_split_documents():
    body = b'[{"personid":"U1","note":"a, [b] {c} \\" ]"}, {"personid":"U2","x":NaN}]'
    read = read_documents(body)
    assert read.documents == [{"personid": "U1", "note": 'a, [b] {c} " ]'}]
    assert [u.key for u in read.unreadable] == ["U2"]


def test_depth_and_stripping_need_no_recursion():
    deep: dict = {}
    inner = deep
    for _ in range(50_000):
        inner["ssn"] = "x"
        inner["a"] = {}
        inner = inner["a"]
    assert depth_of(deep) == MAX_DEPTH + 1  # stops counting past the limit
    strip_sensitive(deep)  # a recursive walk would exhaust the stack here
    assert "ssn" not in deep and "ssn" not in deep["a"]["a"]
