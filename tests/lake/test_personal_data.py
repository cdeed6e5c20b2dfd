"""Personal data lives only in the layers: what the lake keeps of a rejected record, and what it
logs, are its key, its field names and the reason, never its values."""

from __future__ import annotations

import hashlib
import logging
import uuid

import orjson
import pytest

from dataload.lake import Lake

SORT = orjson.OPT_SORT_KEYS


async def test_rejected_records_keep_their_key_and_field_names_not_their_values(
    lake: Lake, conn, caplog: pytest.LogCaptureFixture
):
    records = [
        {"personid": "   ", "ssn": "REJ-SSN-888"},  # blank key: no key to keep either
        {"personid": "U00000002", "finAidAward": "FINAID-777", "note": "a\x00b"},  # NUL
        {"personid": "U00000003", "gpa": float("nan"), "ssn": "REJ-SSN-999"},  # NaN
        {"personid": "U00000004", "name": "kept"},
    ]
    run = await lake.start_run("person")
    with caplog.at_level(logging.WARNING, logger="dataload.lake"):
        result = await run.load(records)
    await run.finish(complete=False)
    assert (result.inserted, result.rejected) == (1, 3)
    samples = await conn.fetch("SELECT reason, sample FROM lake.rejected ORDER BY sample")
    kept = caplog.text + " ".join(r["sample"] + r["reason"] for r in samples)
    for value in ("REJ-SSN-888", "FINAID-777", "REJ-SSN-999", "a\x00b", "a\\u0000b"):
        assert value not in kept
    assert '{"key":["U00000002"],"fields":{"personid":"string","finAidAward":"string",' in kept
    assert '{"key":null,"fields":{"personid":"string","ssn":"string"}}' in kept
    assert '"gpa":"number"' in kept


async def test_the_exact_hash_kept_is_that_of_the_text_as_given(lake: Lake, conn):
    """Before: the loader kept the hash of the stripped text, which a record given with its
    never-store fields never matched: every reload of such records was stripped, canonicalised
    and compared again (0.68x COPY against 3.7-4.4x for the same records without them)."""
    record = {"personid": "U00000001", "ssn": "123-45-6789", "name": "A"}
    run = await lake.start_run("person")
    await run.load([record])
    await run.finish(complete=False)
    stored = await conn.fetchval(
        "SELECT exact_hash FROM person_xform.current_person_data WHERE bu_uid = 'U00000001'"
    )
    assert stored == uuid.UUID(bytes=hashlib.md5(orjson.dumps(record, option=SORT)).digest())
    again = await lake.start_run("person")
    offered = await conn.fetch(
        "SELECT ord FROM lake.offer($1, $2::jsonb, $3::uuid[])",
        again.run_id,
        '[["U00000001"]]',
        [stored],
    )
    await again.finish(complete=False)
    assert offered == []  # unchanged at the first step: never stripped nor hashed again


async def test_a_record_given_again_with_never_store_fields_is_remembered_as_given(
    lake: Lake, conn
):
    """Stored without them, then given with them: unchanged, and the text as given is
    remembered, so that the next reload of it stops at the first step."""
    clean = {"personid": "U00000001", "name": "A"}
    given = {**clean, "ssn": "123-45-6789"}
    for record in (clean, given):
        run = await lake.start_run("person")
        result = await run.load([record])
        await run.finish(complete=False)
    assert (result.unchanged, result.inserted, result.changed) == (1, 0, 0)
    stored = await conn.fetchval(
        "SELECT exact_hash FROM person_xform.current_person_data WHERE bu_uid = 'U00000001'"
    )
    assert stored == uuid.UUID(bytes=hashlib.md5(orjson.dumps(given, option=SORT)).digest())
    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data") == 1
