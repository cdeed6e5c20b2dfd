"""sage_transactions: validation before the load (rejections kept with their reasons, the run
refused above the threshold), dimensions and transform as parallel branches joined before it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.flows.world import World

from dataload.examples.sage import read_csv, validate
from dataload.flows.domain import DomainGuardError, domain_flow
from dataload.sources.errors import SourceResponseError

pytestmark = pytest.mark.slow

XFORM = "sage_transactions_xform.sage_transactions"
GOOD = {
    "transaction_id": "T1",
    "date": "2026-04-30",
    "account_code": "4000",
    "amount": "12.50",
    "currency": "GBP",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"transaction_id": ""}, "missing transaction_id"),
        ({"date": "2026-13-01"}, "is not a YYYY-MM-DD date"),
        ({"amount": "12,50O"}, "is not a number"),
        ({"amount": "1.005"}, "more than two decimals"),
        ({"currency": "XXX"}, "currency 'XXX'"),
    ],
)
def test_validation_refuses_a_row_with_its_reason(change: dict, reason: str) -> None:
    valid, rejected = validate.fn([GOOD, {**GOOD, **change}])

    assert valid == [GOOD]
    assert len(rejected) == 1 and reason in rejected[0][0]


def test_a_row_with_too_few_or_too_many_fields_is_a_rejection_naming_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "transaction_id,date,account_code,customer_id,description,amount,currency\n"
        "T1,2026-04-30,4000,C-ACME,Sales 1,12.50,GBP\n"
        "T2,2026-04-30,4000,C-ACME,Sales 2\n"
        "T3,2026-04-30,6100,,Rent, April,-900.00,GBP\n"
        '"T4",2026-04-30,4000,,"Sales\n4",1.00,GBP\n'
        "\n"
        "T5,2026-04-30,4000,,Sales 5,2.00,GBP\n",
        encoding="utf-8",
    )

    export = read_csv(path)

    assert [row["transaction_id"] for row in export.rows] == ["T1", "T4", "T5"]
    assert export.lines == [2, 5, 8]  # T4's description spans two lines; line 7 is blank
    assert [reason for reason, _ in export.ragged] == [
        "line 3: 5 fields where the header has 7",
        "line 4: 8 fields where the header has 7",
    ]
    valid, rejected = validate.fn(export.rows, export.lines)
    assert len(valid) == 3 and rejected == []


def test_every_row_of_a_duplicated_transaction_id_is_rejected() -> None:
    other = {**GOOD, "transaction_id": "T2"}
    again = {**GOOD, "transaction_id": " T1", "amount": "13.00"}

    valid, rejected = validate.fn([GOOD, other, again], [2, 3, 9])

    assert valid == [other]
    assert [reason for reason, _ in rejected] == [
        "line 2: transaction_id 'T1' is also on line 9",
        "line 9: transaction_id 'T1' is also on line 2",
    ]


@pytest.mark.parametrize(("delimiter", "named"), [(";", "';' (semicolons)"), ("\t", "tabs")])
async def test_an_export_with_another_delimiter_is_refused_in_one_line(
    world: World, delimiter: str, named: str
) -> None:
    world.sandbox.config.examples.sage_delimiter = delimiter

    with pytest.raises(SourceResponseError) as refused:
        await domain_flow("sage_transactions")

    message = str(refused.value)
    assert f"transactions.csv is delimited by {named}, not commas" in message
    assert "\n" not in message
    assert await world.count(f"SELECT count(*) FROM {XFORM}") == 0


async def test_valid_rows_load_joined_with_their_account_and_rejections_are_kept(
    world: World,
) -> None:
    world.sandbox.config.examples.sage_bad_rate = 0.03

    report = await domain_flow("sage_transactions")

    rejected = report.counts["rejected"]
    assert 0 < rejected <= 0.05 * 400
    assert report.counts["new"] == 400 - rejected
    row = await world.conn.fetchrow(f"SELECT account_name, amount_cents FROM {XFORM} LIMIT 1")
    assert row["account_name"] and isinstance(row["amount_cents"], int)
    types = await world.column(
        "SELECT data_type FROM information_schema.columns WHERE table_schema ="
        " 'sage_transactions_xform' AND column_name IN ('date', 'amount_cents') ORDER BY 1"
    )
    assert types == ["bigint", "date"]
    reasons = await world.column(
        "SELECT reason FROM lake.rejected WHERE run_id = $1", report.run_id
    )
    assert len(reasons) == rejected and all(reason.startswith("line ") for reason in reasons)
    # The sandbox's faults include ragged rows and repeated ids: each costs its rows only.
    assert any("fields where the header has 7" in reason for reason in reasons)
    assert any("is also on line" in reason for reason in reasons)
    # Samples say where a row was or which transaction it is: no customer, no description.
    samples = await world.column(
        "SELECT sample FROM lake.rejected WHERE run_id = $1", report.run_id
    )
    assert {tuple(orjson.loads(sample)) for sample in samples} <= {("line",), ("transaction_id",)}


async def test_a_run_above_the_rejection_threshold_loads_nothing(world: World) -> None:
    world.sandbox.config.examples.sage_bad_rate = 0.3

    with pytest.raises(DomainGuardError, match="validation rejected"):
        await domain_flow("sage_transactions")

    run = await world.last_run("sage_transactions")
    assert run["status"] == "failed" and run["rejected"] > 0.05 * 400
    assert await world.count(f"SELECT count(*) FROM {XFORM}") == 0
