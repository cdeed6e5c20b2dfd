"""Preparing a batch: validation, key extraction, order, duplicates (pure Python)."""

from __future__ import annotations

from dataload.lake.batch import prepare_batch
from dataload.lake.domains import Domain

COURSE = Domain(
    "course",
    ("academic_career", "term_code", "course_id", "session_code"),
    ("text", "text", "bigint", "text"),
    ("academicCareer", "termCode", "courseId", "sessionCode"),
)


def course(course_id, **extra):
    return {
        "academicCareer": "UGRD",
        "termCode": "2268",
        "courseId": course_id,
        "sessionCode": "1",
        **extra,
    }


def test_records_come_out_sorted_by_key_so_concurrent_batches_lock_in_one_order():
    batch = prepare_batch(COURSE, [course(3), course(1), course(2)])
    assert [k[2] for k in batch.keys] == [1, 2, 3]


def test_a_key_offered_twice_keeps_the_last_record_and_rejects_the_first():
    batch = prepare_batch(COURSE, [course(1, title="old"), course(1, title="new")])
    assert len(batch.keys) == 1 and '"new"' in batch.payloads[0]
    assert [r.reason for r in batch.rejections] == [
        "key ('UGRD', '2268', 1, '1') offered again in the same batch with other content; "
        "only the last record of a key is loaded"
    ]


def test_the_same_record_twice_is_a_repeat_not_a_rejection():
    batch = prepare_batch(COURSE, [course(1), course(2), course(1)])
    assert len(batch.keys) == 2 and batch.valid == 2
    assert (batch.repeated, batch.rejections) == (1, [])


def test_invalid_keys_are_rejected_with_the_reason():
    batch = prepare_batch(
        COURSE,
        [course(True), course(2**64), course("7"), {**course(1), "termCode": ""}, None],
    )
    assert batch.keys == []
    assert [r.reason for r in batch.rejections] == [
        "key field 'courseId' must be an integer, got bool",
        "key field 'courseId' must be an integer, got int",
        "key field 'courseId' must be an integer, got str",
        "missing key field 'termCode'",
        "not a JSON object but NoneType",
    ]


def test_a_record_with_unstorable_content_keeps_its_key_as_seen_without_a_hash():
    batch = prepare_batch(COURSE, [course(1, note="a\x00b"), course(2)])
    assert [k[2] for k in batch.keys] == [1, 2]
    assert batch.exact_hashes[0] is None and batch.exact_hashes[1] is not None
    assert batch.valid == 1
    assert "NUL" in batch.rejections[0].reason


def test_an_escaped_backslash_before_u0000_is_not_mistaken_for_nul():
    batch = prepare_batch(COURSE, [course(1, note="C:\\u0000dir")])
    assert batch.rejections == [] and batch.valid == 1
