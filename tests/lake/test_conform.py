"""Arrow batches cast to a table's columns: names matched, bad values rejected, not retyped."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from dataload.lake.conform import Conformer, as_arrow
from dataload.lake.domains import TableLayout

LAYOUT = TableLayout(
    "keyed",
    (
        ("id", "bigint"),
        ("distance", "double precision"),
        ("airport_fee", "double precision"),
        ("seats", "smallint"),
        ("day", "date"),
    ),
)


def conformer(**options) -> Conformer:
    return Conformer(LAYOUT, aliases={"TripId": "id"}, keys=("id",), **options)


def test_names_match_exactly_by_alias_or_without_case() -> None:
    data = pa.table(
        {
            "TripId": [1],
            "DISTANCE": [2.5],
            "Airport_fee": [1.75],
            "seats": [2],
            "day": ["2024-01-31"],
        }
    )

    result = conformer().conform(data)

    assert result.rows.to_pylist()[0]["airport_fee"] == 1.75
    assert result.rows.schema.field("seats").type == pa.int16()
    assert result.rejections == []


def test_a_value_that_does_not_fit_rejects_its_row_only() -> None:
    data = pa.table(
        {
            "id": ["1", "2", "3", "4"],
            "distance": ["1.5", "abc", "2", None],
            "airport_fee": [0.0, 0.0, 0.0, 0.0],
            "seats": [1, 2, 70000, 1],
            "day": ["2024-01-01"] * 4,
        }
    )

    result = conformer().conform(data)

    assert [r["id"] for r in result.rows.to_pylist()] == [1, 4]
    assert result.rows.schema.field("distance").type == pa.float64()  # never retyped
    assert [r.reason for r in result.rejections] == [
        "row 2: column distance: a text value that is not a double precision",
        "row 3: column seats: a bigint value that is not a smallint",
    ]
    # Where the row was, its key, its columns' types: never its values (they may be personal).
    sample = orjson.loads(result.rejections[0].sample)
    assert sample["row"] == 2 and sample["key"] == {"id": "2"}
    assert sample["columns"]["distance"] == "text" and "abc" not in result.rejections[0].sample


def test_rows_are_numbered_from_where_the_batch_starts() -> None:
    data = pa.table({"id": [7, 8], "distance": ["x", "1"]})

    result = conformer().conform(data, first_row=1001)

    assert [r.reason for r in result.rejections] == [
        "row 1001: column distance: a text value that is not a double precision"
    ]


def test_a_required_column_without_a_value_rejects_the_row() -> None:
    data = pa.table({"id": [1, None], "distance": [1.0, 2.0]})

    result = conformer(required={"id"}).conform(data)

    assert len(result.rows) == 1
    assert [r.reason for r in result.rejections] == [
        "row 2: column id is required and has no value"
    ]


def test_missing_columns_are_null_and_new_ones_are_named_with_their_type() -> None:
    data = pa.table({"id": [1], "distance": [1.0], "CBD fee": [0.75]})
    shape = conformer()

    assert shape.new_columns(data) == {"cbd_fee": "double precision"}
    with pytest.raises(ValueError, match="not columns of the table"):
        shape.conform(data)
    result = shape.conform(data.drop_columns(["CBD fee"]))
    assert result.rows.to_pylist()[0]["airport_fee"] is None
    assert shape.changes.missing == {"airport_fee", "seats", "day"}


def test_two_source_columns_for_one_column_are_refused() -> None:
    data = pa.table({"id": [1], "airport_fee": [1.0], "Airport_fee": [2.0]})

    with pytest.raises(ValueError, match="two columns for 'airport_fee'"):
        conformer().conform(data)


def test_records_become_arrow_column_by_column_and_nested_values_become_json_text() -> None:
    data = as_arrow([{"id": 1, "tags": ["a", "b"], "mixed": 1}, {"id": 2, "mixed": "x"}])
    layout = TableLayout("keyed", (("id", "bigint"), ("tags", "text"), ("mixed", "text")))

    result = Conformer(layout).conform(data)

    assert result.rows.to_pylist() == [
        {"id": 1, "tags": '["a","b"]', "mixed": "1"},
        {"id": 2, "tags": None, "mixed": "x"},
    ]
