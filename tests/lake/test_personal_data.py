"""Personal data lives only in the layers: what the lake keeps of a rejected record, and what it
logs, are its key, its field names and the reason, never its values."""

from __future__ import annotations

import logging

import pytest

from dataload.lake import Lake


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
